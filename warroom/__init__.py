"""warroom: incident-management automation for SaaS hosting portals."""
