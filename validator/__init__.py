"""The validator role: observer, compute loop, signer, RPC server, the validator service."""
