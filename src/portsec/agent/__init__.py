"""The Open vSwitch agent: keeps br-int's flows equal to what the store says, port by port."""
