"""The HTTP face of warroom: REST API, inbound webhooks and web pages."""
