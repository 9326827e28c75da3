"""Which backend runs, and where OVN is: the names every command and the server's workers read (no imports)."""

NATIVE, OVN = "native", "ovn"
ENV_BACKEND, ENV_NB, ENV_SB = "PORTSEC_BACKEND", "PORTSEC_OVN_NB", "PORTSEC_OVN_SB"
