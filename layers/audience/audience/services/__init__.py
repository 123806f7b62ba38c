"""Use cases: what each Lambda handler asks for, written against ``audience.ports``."""
