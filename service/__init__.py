"""leaf7 service: app factory, configuration, routes and the ``leaf7`` command."""
