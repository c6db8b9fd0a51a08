"""SFDX source format: `objects/<Object>/<Object>.object-meta.xml` and
`objects/<Object>/fields/<Field>.field-meta.xml`, turned into describe-shaped definitions.

The mapping follows what a real org's describe reports for the same metadata: `Text` is
`string`, `Number` is `double`, `Lookup`/`MasterDetail` are `reference` whose relationship name
is the field's with `__r` for `__c`, formula, roll-up and auto-number fields are read-only, `required` means
not nillable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import parse as parse_xml

from bulkforce.engine.schema import SchemaError

_NS = "{http://soap.sforce.com/2006/04/metadata}"

# SFDX field type → (describe type, default length)
_TYPES: dict[str, tuple[str, int]] = {
    "Text": ("string", 255), "TextArea": ("textarea", 255), "LongTextArea": ("textarea", 32768),
    "Html": ("textarea", 32768), "EncryptedText": ("encryptedstring", 175),
    "Email": ("email", 80), "Phone": ("phone", 40), "Url": ("url", 255),
    "Number": ("double", 0), "Currency": ("currency", 0), "Percent": ("percent", 0),
    "Checkbox": ("boolean", 0), "Date": ("date", 0), "DateTime": ("datetime", 0),
    "Time": ("time", 0), "Picklist": ("picklist", 255), "MultiselectPicklist": ("multipicklist", 4099),
    "Lookup": ("reference", 18), "MasterDetail": ("reference", 18),
    "ExternalLookup": ("reference", 18), "Hierarchy": ("reference", 18),
    "AutoNumber": ("string", 30), "Location": ("location", 0),
}  # fmt: skip
# Roll-up summaries report a number; the operation decides which, `count` is whole.
_SUMMARY_TYPES = {"count": "double", "sum": "double", "min": "double", "max": "double"}


def _text(el: Element, tag: str) -> str | None:
    child = el.find(_NS + tag)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _flag(el: Element, tag: str) -> bool:
    return (_text(el, tag) or "").lower() == "true"


def _read(path: Path) -> Element:
    try:
        root: Element = parse_xml(path).getroot()
    except (ParseError, DefusedXmlException) as e:
        raise SchemaError(f"{path}: not valid metadata XML: {e}") from None
    except OSError as e:
        raise SchemaError(f"{path}: cannot read: {e.strerror}") from None
    return root


def _int(path: Path, el: Element, tag: str, default: int) -> int:
    raw = _text(el, tag)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SchemaError(f"{path}: <{tag}> must be a whole number, got {raw!r}") from None


def _picklist(el: Element) -> tuple[list[dict[str, Any]], bool]:
    """(picklistValues, restricted). A global value set's values live elsewhere: unrestricted."""
    vs = el.find(_NS + "valueSet")
    if vs is None:
        return [], False
    restricted = _flag(vs, "restricted")
    definition = vs.find(_NS + "valueSetDefinition")
    if definition is None:
        return [], False
    values = []
    for v in definition.findall(_NS + "value"):
        name = _text(v, "fullName")
        if name is None:
            continue
        values.append(
            {"value": name, "label": _text(v, "label") or name, "active": True,
             "defaultValue": _flag(v, "default")}
        )  # fmt: skip
    return values, restricted


def parse_field(path: Path, obj_name: str) -> dict[str, Any]:
    el = _read(path)
    name = _text(el, "fullName") or path.name.removesuffix(".field-meta.xml")
    sfdx_type = _text(el, "type")
    formula = _text(el, "formula")
    if sfdx_type == "Summary":
        op = (_text(el, "summaryOperation") or "count").lower()
        ftype, length = _SUMMARY_TYPES.get(op, "double"), 0
    elif sfdx_type in _TYPES:
        ftype, length = _TYPES[sfdx_type]
    else:
        raise SchemaError(f"{path}: object {obj_name}, field {name}: unknown type {sfdx_type!r}")
    read_only = formula is not None or sfdx_type in ("Summary", "AutoNumber")
    out: dict[str, Any] = {
        "name": name,
        "label": _text(el, "label") or name,
        "type": ftype,
        "length": _int(path, el, "length", length),
        "externalId": _flag(el, "externalId"),
        "unique": _flag(el, "unique"),
        "caseSensitive": _flag(el, "caseSensitive"),
        "createable": not read_only,
        "updateable": not read_only,
        "calculated": formula is not None or sfdx_type == "Summary",
        "nillable": not _flag(el, "required"),
    }
    if ftype in ("double", "currency", "percent"):
        out["precision"] = _int(path, el, "precision", 18)
        out["scale"] = _int(path, el, "scale", 0)
    if ftype in ("picklist", "multipicklist"):
        out["picklistValues"], out["restrictedPicklist"] = _picklist(el)
        if any(v["defaultValue"] for v in out["picklistValues"]):
            out["defaultedOnCreate"] = True
    default = _text(el, "defaultValue")
    if ftype == "boolean":
        out["nillable"] = False
        out["defaultedOnCreate"] = True
        out["defaultValue"] = (default or "false").lower()
    elif default is not None:
        # a formula such as `"Open"` or `10`; literal values are what clients load against
        out["defaultValue"] = default.strip('"')
        out["defaultedOnCreate"] = True
    if ftype == "reference":
        target = _text(el, "referenceTo")
        if target is None:
            raise SchemaError(f"{path}: object {obj_name}, field {name}: <referenceTo> is missing")
        out["referenceTo"] = [target]
        # <relationshipName> names the child relationship seen from the parent; from the
        # child, a custom lookup's relationship is its own name with __r (Account__c → Account__r)
        out["relationshipName"] = name.removesuffix("__c") + "__r"
        child_name = _text(el, "relationshipName")
        if child_name:
            out["childRelationshipName"] = child_name + "__r"
        if sfdx_type == "MasterDetail":
            out["nillable"] = False
            out["updateable"] = _flag(el, "reparentableMasterDetail")
    if sfdx_type == "AutoNumber" or formula is not None:
        out["nillable"] = True
        out["defaultedOnCreate"] = sfdx_type == "AutoNumber"
    return out


def _object(folder: Path) -> dict[str, Any]:
    name = folder.name
    obj: dict[str, Any] = {"name": name, "fields": []}
    meta = folder / f"{name}.object-meta.xml"
    if meta.is_file():
        el = _read(meta)
        if _text(el, "label"):
            obj["label"] = _text(el, "label")
        if _text(el, "pluralLabel"):
            obj["labelPlural"] = _text(el, "pluralLabel")
        name_field = el.find(_NS + "nameField")
        if name_field is not None:
            # Salesforce names a custom record by its Id when Name is left out: not required
            auto = _text(name_field, "type") == "AutoNumber"
            obj["fields"].append(
                {"name": "Name", "label": _text(name_field, "label") or f"{name} Name",
                 "type": "string", "length": 30 if auto else 80, "nillable": True,
                 "createable": not auto, "updateable": not auto, "defaultedOnCreate": auto,
                 "nameField": True}
            )  # fmt: skip
    fields_dir = folder / "fields"
    if fields_dir.is_dir():
        for path in sorted(fields_dir.glob("*.field-meta.xml")):
            obj["fields"].append(parse_field(path, name))
    return obj


def load_folder(root: Path) -> list[dict[str, Any]]:
    """Every object folder under `root`: an SFDX project, its `objects/`, or one object folder."""
    if (root / f"{root.name}.object-meta.xml").is_file() or (root / "fields").is_dir():
        folders = [root]
    else:
        folders = sorted(
            {p.parent.parent for p in root.rglob("objects/*/fields/*.field-meta.xml")}
            | {p.parent for p in root.rglob("objects/*/*.object-meta.xml")}
        )
        if root.name == "objects":
            folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise SchemaError(
            f"{root}: no SFDX objects found (expected objects/<Object>/fields/*.field-meta.xml)"
        )
    return [_object(f) for f in folders]
