"""A Temporal workflow that pays an invoice once Signoff's verdict arrives as a signal."""
