"""storage_mysql: MySQL or MariaDB through SQLAlchemy + aiomysql; other workers poll the change feed."""
