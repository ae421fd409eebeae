"""What every node process needs: config, LMDB store, gossip, keystore, logging, metrics."""
