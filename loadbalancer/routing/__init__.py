"""Which provider serves a request: the failover loop, the balancer, what a request needs.

`failover.forward_to_provider` asks the `balancer` for an order of providers and tries them
through the provider interface. `needs` reads what a request requires from a provider once.

May import: providers, translation, toolcalls and the primitives.
"""
