"""The state machine and the work around it: outbox, scheduler, batches, canaries, waiters."""
