"""REST resource shapes: describeGlobal, sObject describe, a record, limits, REST errors.

Describe is generated from the loaded schema with the property set a real org returns, so
clients that read any property (jsforce, simple-salesforce, the sf CLI) find it; properties
the server does not model take the value a plain custom field has.
"""

from __future__ import annotations

from typing import Any

from bulkforce.engine import ids
from bulkforce.engine.schema import NUMBER_TYPES, STRING_TYPES, ChildRelationship, Field, SObject
from bulkforce.errors import Kind
from bulkforce.wire import bulk2

REST_ERRORS: dict[Kind, tuple[int, str]] = {
    Kind.ENTITY_IS_DELETED: (404, "ENTITY_IS_DELETED"),
    Kind.INVALID_FIELD: (400, "INVALID_FIELD"),
    Kind.INVALID_ENTITY: (400, "INVALID_TYPE"),
    Kind.CLIENT_INPUT: (400, "INVALID_FIELD"),
    Kind.QUERY: (400, "MALFORMED_QUERY"),
    Kind.INVALID_LOCATOR: (400, "INVALID_QUERY_LOCATOR"),
}

# What the SOAP API calls each type: clients that build SOAP or type records read it.
_SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
    "long": "xsd:long", "double": "xsd:double", "currency": "xsd:double",
    "percent": "xsd:double", "date": "xsd:date", "datetime": "xsd:dateTime",
    "time": "xsd:time", "base64": "xsd:base64Binary", "address": "urn:address",
    "location": "urn:location", "anyType": "xsd:anyType", "complexvalue": "urn:JsonNode",
    "json": "urn:JsonNode",
}  # fmt: skip
_API = "/services/data/v{ver}"


def error_body(
    kind: Kind, message: str, code: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    if kind in (Kind.QUERY, Kind.INVALID_LOCATOR):  # the query resource's shape (query.md §4.1)
        status, default = REST_ERRORS[kind]
        return status, [{"message": message, "errorCode": code or default}]
    if kind in REST_ERRORS:
        status, default = REST_ERRORS[kind]
        return status, [{"errorCode": code or default, "message": message, "fields": []}]
    return bulk2.error_body(kind, message, code)


def _urls(obj: SObject, ver: str) -> dict[str, str]:
    base = f"{_API.format(ver=ver)}/sobjects/{obj.name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "describe": f"{base}/describe",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def sobject_summary(obj: SObject, ver: str) -> dict[str, Any]:
    """One entry of describeGlobal; also the head of a full describe."""
    return {
        "activateable": False, "associateEntityType": None, "associateParentEntity": None,
        "createable": True, "custom": obj.custom, "customSetting": False,
        "deepCloneable": False, "deletable": True, "deprecatedAndHidden": False,
        "feedEnabled": False, "hasSubtypes": False, "isInterface": False, "isSubtype": False,
        "keyPrefix": obj.key_prefix, "label": obj.label, "labelPlural": obj.label_plural,
        "layoutable": True, "mergeable": obj.name in ("Account", "Contact", "Lead", "Case"),
        "mruEnabled": True, "name": obj.name, "queryable": True, "replicateable": True,
        "retrieveable": True, "searchable": True, "triggerable": True, "undeletable": True,
        "updateable": True, "urls": _urls(obj, ver),
    }  # fmt: skip


def describe_global(objects: list[SObject], ver: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [sobject_summary(o, ver) for o in objects],
    }


def field_describe(f: Field) -> dict[str, Any]:
    text = f.type in STRING_TYPES
    number = f.type in NUMBER_TYPES
    system = f.name in ("Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                        "LastModifiedById", "SystemModstamp")  # fmt: skip
    return {
        "aggregatable": f.type not in ("textarea", "multipicklist", "base64"),
        "aiPredictionField": False,
        "autoNumber": False,
        "byteLength": f.length * 3 if text or f.type in ("id", "reference") else 0,
        "calculated": f.calculated,
        "calculatedFormula": None,
        "cascadeDelete": False,
        "caseSensitive": f.case_sensitive,
        "compoundFieldName": None,
        "controllerName": None,
        "createable": f.createable,
        "custom": f.name.endswith("__c"),
        "defaultValue": _default(f),
        "defaultValueFormula": None,
        "defaultedOnCreate": f.defaulted_on_create,
        "dependentPicklist": False,
        "deprecatedAndHidden": False,
        "digits": f.digits if f.type in ("int", "long") else 0,
        "displayLocationInDecimal": False,
        "encrypted": f.type == "encryptedstring",
        "externalId": f.external_id,
        "extraTypeInfo": None,
        "filterable": f.type not in ("textarea", "base64"),
        "filteredLookupInfo": None,
        "formulaTreatNullNumberAsZero": False,
        "groupable": f.type not in ("textarea", "double", "currency", "percent", "datetime"),
        "highScaleNumber": False,
        "htmlFormatted": False,
        "idLookup": f.id_lookup,
        "inlineHelpText": None,
        "label": f.label,
        "length": f.length if text else 0,
        "mask": None,
        "maskType": None,
        "name": f.name,
        "nameField": f.name == "Name",
        "namePointing": len(f.reference_to) > 1,
        "nillable": f.nillable,
        "permissionable": f.nillable and not system and f.name.endswith("__c"),
        "picklistValues": [
            {
                "active": True,
                "defaultValue": v == f.default_value,
                "label": v,
                "validFor": None,
                "value": v,
            }
            for v in f.picklist_values
        ],
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision if number else 0,
        "queryByDistance": False,
        "referenceTargetField": None,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "relationshipOrder": None,
        "restrictedDelete": False,
        "restrictedPicklist": f.restricted_picklist,
        "scale": f.scale if number else 0,
        "searchPrefilterable": f.type == "reference",
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "sortable": f.type not in ("textarea", "multipicklist", "base64"),
        "type": f.type,
        "unique": f.unique,
        "updateable": f.updateable,
        "writeRequiresMasterRead": False,
    }


def _default(f: Field) -> Any:
    if f.type == "boolean":
        return (f.default_value or "false").lower() == "true"
    if f.type in ("picklist", "multipicklist"):
        return None  # a picklist's default is flagged on its value
    return f.default_value


def describe(obj: SObject, children: list[ChildRelationship], ver: str) -> dict[str, Any]:
    out = sobject_summary(obj, ver)
    out.update(
        {
            "actionOverrides": [],
            "childRelationships": [
                {
                    "cascadeDelete": False,
                    "childSObject": rel.child.name,
                    "deprecatedAndHidden": False,
                    "field": rel.field.name,
                    "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                    "relationshipName": rel.name,
                    "restrictedDelete": False,
                }
                for rel in children
            ],
            "compactLayoutable": True,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [field_describe(f) for f in obj.fields.values()],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                    "urls": {
                        "layout": f"{_API.format(ver=ver)}/sobjects/{obj.name}"
                        "/describe/layouts/012000000000000AAA"
                    },
                }
            ],
            "searchLayoutable": True,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [{"label": "All " + obj.label_plural.lower(), "name": "everything"}],
        }
    )
    return dict(sorted(out.items()))


def metadata(obj: SObject, ver: str) -> dict[str, Any]:
    """`GET /sobjects/{X}`: the summary and recently viewed records (none here)."""
    return {"objectDescribe": sobject_summary(obj, ver), "recentItems": []}


def _value(f: Field, v: Any) -> Any:
    if v is None:
        return None
    if f.type == "boolean":
        return bool(v)
    if f.type == "datetime" and isinstance(v, str) and v.endswith("Z"):
        return v[:-1] + "+0000"  # REST JSON writes the offset, CSV the Z
    return v


def record(obj: SObject, values: dict[str, Any], ver: str, raw_id: str) -> dict[str, Any]:
    """`raw_id` as the path named it: `values` lack Id when `?fields=` left it out, and the
    URL carries the 18-character form either way."""
    rid = values.get("Id") or ids.normalize(raw_id)
    out: dict[str, Any] = {
        "attributes": {
            "type": obj.name,
            "url": f"{_API.format(ver=ver)}/sobjects/{obj.name}/{rid}",
        }
    }
    for name, v in values.items():
        f = obj.field(name)
        if f is None:
            continue
        if f.type == "address":
            out[name] = _address(obj, name, values)
        else:
            out[name] = _value(f, v)
    return out


def _address(obj: SObject, name: str, values: dict[str, Any]) -> dict[str, Any] | None:
    """A compound address is its component fields (MailingAddress: MailingStreet, ...)."""
    stem = name.removesuffix("Address")
    parts = {}
    for key, suffix in (("city", "City"), ("country", "Country"), ("postalCode", "PostalCode"),
                        ("state", "State"), ("street", "Street"), ("latitude", "Latitude"),
                        ("longitude", "Longitude"), ("geocodeAccuracy", "GeocodeAccuracy")):  # fmt: skip
        f = obj.field(stem + suffix)
        parts[key] = values.get(f.name) if f is not None else None
    return parts if any(v is not None for v in parts.values()) else None


# Allocations of a Developer Edition org; the ones this server counts say so in `used`.
LIMITS: dict[str, int] = {
    "ConcurrentAsyncGetReportInstances": 200, "ConcurrentSyncReportRuns": 20,
    "DailyApiRequests": 15000, "DailyAsyncApexExecutions": 250000,
    "DailyBulkApiBatches": 15000, "DailyBulkV2QueryFileStorageMB": 976562,
    "DailyBulkV2QueryJobs": 10000, "DailyDurableGenericStreamingApiEvents": 10000,
    "DailyDurableStreamingApiEvents": 10000, "DailyGenericStreamingApiEvents": 10000,
    "DailyStandardVolumePlatformEvents": 10000, "DailyStreamingApiEvents": 10000,
    "DailyWorkflowEmails": 405, "DataStorageMB": 5, "FileStorageMB": 20,
    "HourlyAsyncReportRuns": 1200, "HourlyDashboardRefreshes": 200,
    "HourlyDashboardResults": 5000, "HourlyDashboardStatuses": 999999999,
    "HourlyODataCallout": 10000, "HourlySyncReportRuns": 500, "HourlyTimeBasedWorkflow": 1000,
    "MassEmail": 10, "SingleEmail": 15,
}  # fmt: skip


def limits(used: dict[str, int]) -> dict[str, Any]:
    return {
        name: {"Max": cap, "Remaining": max(cap - used.get(name, 0), 0)}
        for name, cap in LIMITS.items()
    }
