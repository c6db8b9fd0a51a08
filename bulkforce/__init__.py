"""bulkforce: a self-hosted server that speaks the Salesforce Bulk API."""

__version__ = "0.1.0"
