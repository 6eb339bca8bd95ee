"""CDS client authentication: token checks, trusted issuers and their keys, replay cache."""
