"""lxml parsers that never resolve entities, load DTDs or touch the network.

Every XML file Innen reads (our own bank files for validation, the schemas,
and bank statements later) goes through these parsers.
"""

from __future__ import annotations

from lxml import etree


def safe_parser(**options: object) -> etree.XMLParser:
    """An XMLParser with entities, DTD loading and network off (extra lxml options allowed)."""
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        **options,
    )
