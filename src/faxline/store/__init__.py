"""Storage: SQLAlchemy models, migrations, and the data directory's files."""
