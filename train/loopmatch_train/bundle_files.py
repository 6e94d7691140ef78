"""Edit an existing bundle's manifest and model card in place (json only, no torch)."""
from __future__ import annotations

import json
import os


def add_role(bundle_dir, role: str, specs: list, key: str, info, card_begin: str, card_end: str, card_section: str):
    """Put a role's models into an existing bundle: its manifest entries replace any of the
    same role, in their place (so running a stage again keeps the models' order, and with it
    the bundle's id), its info goes under manifest[key], and its MODEL_CARD section (between
    card_begin and card_end, which card_section starts and ends with) replaces the old one
    in its place or is appended. The bundle's other files are left as they are."""
    mp = os.path.join(bundle_dir, "manifest.json")
    with open(mp) as fh:
        manifest = json.load(fh)
    models = manifest["models"]
    at = next((i for i, m in enumerate(models) if m.get("role") == role), None)
    rest = [m for m in models if m.get("role") != role]
    if at is None:
        manifest["models"] = rest + specs
    else:
        manifest["models"] = rest[:at] + specs + rest[at:]
    manifest[key] = info
    with open(mp, "w") as fh:
        json.dump(manifest, fh, indent=2)
    cp = os.path.join(bundle_dir, "MODEL_CARD.md")
    with open(cp) as fh:
        card = fh.read()
    if card_begin in card and card_end in card:
        a, b = card.index(card_begin), card.index(card_end) + len(card_end)
        card = card[:a] + card_section.strip("\n") + card[b:]
    else:
        card = card.rstrip("\n") + "\n\n" + card_section
    with open(cp, "w") as fh:
        fh.write(card)
