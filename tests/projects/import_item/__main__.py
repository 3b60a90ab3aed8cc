"""A program that declares one library item with the `import` resource option (tests/test_engine.py).

Config (namespace `test`): libraryId, name, source, itemId; vsphere:* as for the project.
"""

import sys
from pathlib import Path

import pulumi

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository: providers/, vmimage/

from providers.library_item import ContentLibraryItem

config = pulumi.Config("test")
item = ContentLibraryItem(
    "imported",
    library_id=config.require("libraryId"),
    name=config.require("name"),
    source=config.require("source"),
    opts=pulumi.ResourceOptions(import_=config.require("itemId")),
)
pulumi.export("item_id", item.item_id)
