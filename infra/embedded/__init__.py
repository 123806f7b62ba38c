"""The embedded local AWS: moto in server mode, the stack created from ``template.yaml``,
and the real handlers run in-process, wired as the template wires them.

Modules: ``template`` (package, translate, adapt for moto), ``deploy`` (create the stack),
``runtime`` (run a handler as Lambda would), ``api_front`` (API Gateway REST proxy on
127.0.0.1:3000), ``kinesis_poller`` (Lambda's Kinesis event source mapping), ``stack``
(starts and stops it all), ``demo`` and ``__main__`` (the command line).
"""
