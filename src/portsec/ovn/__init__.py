"""OVN as portsec's distributed backend: the store's intent in the Northbound database (reference/ovn.md)."""
