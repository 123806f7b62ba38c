"""AWS implementations of the ports in ``audience.ports``."""
