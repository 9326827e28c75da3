"""OpenFlow for br-int: flows as values, the pipeline, the compiler, the switch model and trace."""
