"""Organizations, users, extensions: number formats, resolution, provisioning."""
