"""The sequencer role: batch builder, signature aggregation, L1 submitter."""
