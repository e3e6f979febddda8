"""The base of the store domains that act on a vendor's projects."""

from store.core import Core
from store.projects import Projects
from store.vendors import Vendors


class ProjectDomain:
    """A domain over the vendors' projects: the core, and the vendors and projects domains it
    looks owners and projects up with (``store.store.Store`` wires them once)."""

    def __init__(self, core: Core, vendors: Vendors, projects: Projects) -> None:
        self.core = core
        self.vendors = vendors
        self.projects = projects
