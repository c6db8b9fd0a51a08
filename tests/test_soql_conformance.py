"""SOQL conformance table (query.md §2.1-§2.3, §4): every statement goes through the parser and
is run against the fixed org of soql_data on SQLite and PostgreSQL, which must both give the
known answer (rows, in order) or Salesforce's error code and text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from soql_data import (
    A1,
    A2,
    A3,
    A4,
    A5,
    C1,
    C2,
    C3,
    C4,
    C5,
    G1,
    G2,
    G3,
    G4,
    GR1,
    GR2,
    L1,
    NOW,
    O1,
    O2,
    O3,
    OR1,
    T2,
    U1,
    open_loaded,
    schema,
)  # fmt: skip

from bulkforce.soql import Api, Dialect, SoqlError, compile_query, parse
from bulkforce.store import Store

SCHEMA = schema()
UTC = dt.UTC


@dataclass
class Case:
    soql: str
    rows: list[list[Any]] | None = None
    error: tuple[str, str] | None = None  # code, whole message or its last line
    api: Api = Api.REST
    kw: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.soql


def R(soql: str, *rows: list[Any], api: Api = Api.REST, **kw: Any) -> Case:
    return Case(soql, list(rows), api=api, kw=kw)


def I(soql: str, *ids: str, api: Api = Api.REST, **kw: Any) -> Case:  # noqa: E743
    """A query selecting only Id: the Ids expected, in order."""
    return Case(soql, [[i] for i in ids], api=api, kw=kw)


def E(soql: str, code: str, text: str, api: Api = Api.REST) -> Case:
    return Case(soql, error=(code, text), api=api)


def D(when: str, *ids: str) -> Case:
    """A filter on Gadget__c.Due__c (date) with a relative date literal or date value."""
    return I(f"SELECT Id FROM Gadget__c WHERE {when}", *ids)


UNKNOWN_FIELD_TAIL = (
    "If you are attempting to use a custom field, be sure to append the '__c' after the custom "
    "field name. Please reference your WSDL or the describe call for the appropriate names."
)
CONTACTS = (C1, C2, C3, C4, C5)
ACCOUNTS = (A1, A2, A3, A5)

CASES: list[Case] = [
    # ---- field lists, names in any case, whitespace ------------------------------------------
    I("SELECT Id FROM Account", *ACCOUNTS),
    I("select id from account", *ACCOUNTS),
    I("SELECT ID FROM ACCOUNT", *ACCOUNTS),
    I("Select Id From Account", *ACCOUNTS),
    I("SELECT  Id\nFROM\tAccount \n", *ACCOUNTS),
    I("SELECT Id \nFROM Account \nWHERE \n    Name like 'Acme%' \n    AND Type = 'Customer' ", A1),
    R("SELECT Name, Industry FROM Account WHERE Id = '" + A1 + "'", ["Acme", "Technology"]),
    R(
        "select name,numberofemployees,annualrevenue from account where id = '" + A3 + "'",
        ["Globex", 200, None],
    ),
    R(
        "SELECT LastName, FirstName, Email, Birthdate, HasOptedOutOfEmail FROM Contact "
        "WHERE Id = '" + C4 + "'",
        ["O'Brien", "Dan", "dan@globex.de", dt.date(2000, 2, 29), False],
    ),
    R(
        "SELECT EmailBouncedDate FROM Contact WHERE Id = '" + C3 + "'",
        [dt.datetime(2024, 3, 1, 10, 0, 0, 1000, tzinfo=UTC)],
    ),
    R(
        "SELECT Name, Tags__c, Score__c, Qty__c, Price__c, Active__c, Due__c, Seen__c, Code__c "
        "FROM Gadget__c WHERE Id = '" + G1 + "'",
        [
            "g1",
            "A;B",
            1.5,
            3,
            10.0,
            True,
            dt.date(2024, 5, 15),
            dt.datetime(2024, 5, 15, 12, tzinfo=UTC),
            "x_1",
        ],
    ),
    R(
        "SELECT Name, Tags__c, Score__c, Qty__c, Price__c, Due__c, Seen__c, Code__c FROM Gadget__c "
        "WHERE Id = '" + G3 + "'",
        ["g3", None, None, None, 0.5, None, None, "X\\1"],
    ),
    I("SELECT Id FROM Account WHERE Id = '" + A2[:15] + "'", A2),
    # ---- parent paths, up to five levels; polymorphic; prefixes and aliases -----------------
    R(
        "SELECT LastName, Account.Name FROM Contact ORDER BY LastName",
        ["Jones", "acme labs"],
        ["Müller", None],
        ["O'Brien", "Globex"],
        ["Smith", "Acme"],
        ["smith", "Acme"],
    ),
    R("SELECT Account.Parent.Name FROM Contact WHERE Id = '" + C4 + "'", ["acme labs"]),
    R("SELECT Account.Parent.Parent.Name FROM Contact WHERE Id = '" + C4 + "'", ["Acme"]),
    R(
        "SELECT account.owner.name, Account.Owner.Manager.Name FROM Contact WHERE Id = '"
        + C3
        + "'",
        ["Second Person", "Admin User"],
    ),
    R(
        "SELECT ReportsTo.ReportsTo.ReportsTo.ReportsTo.LastName FROM Contact WHERE Id = '"
        + C5
        + "'",
        ["Smith"],
    ),
    R(
        "SELECT ReportsTo.ReportsTo.ReportsTo.ReportsTo.ReportsTo.LastName FROM Contact "
        "WHERE Id = '" + C5 + "'",
        [None],
    ),
    E(
        "SELECT ReportsTo.ReportsTo.ReportsTo.ReportsTo.ReportsTo.ReportsTo.LastName FROM Contact",
        "MALFORMED_QUERY",
        "SOQL statements cannot query more than 5 levels of relationships",
    ),
    I("SELECT Id FROM Contact WHERE Account.Parent.Name = 'ACME'", C3),
    I("SELECT Id FROM Contact WHERE Account.Owner.IsActive = false", C3),
    R(
        "SELECT Subject, Who.LastName, What.Name FROM Task",
        ["Call", "Smith", "Acme"],
        ["Email", "Lead", "Big Deal"],
        ["Other", None, None],
    ),
    R(
        "SELECT Who.Type, What.Type FROM Task",
        ["Contact", "Account"],
        ["Lead", "Opportunity"],
        [None, None],
    ),
    I("SELECT Id FROM Task WHERE What.Name = 'big deal'", T2),
    I("SELECT Id FROM Task WHERE Who.Type = 'Lead'", T2),
    R("SELECT Owner.Name FROM Account WHERE Id = '" + A2 + "'", ["Second Person"]),
    R(
        "SELECT c.Id, C.LastName, CONTACT.account.NAME, c.account.Id FROM Contact c "
        "WHERE c.Id = '" + C1 + "'",
        [C1, "Smith", "Acme", A1],
    ),
    R("SELECT Contact.LastName FROM Contact WHERE Contact.Id = '" + C2 + "'", ["smith"]),
    R(
        "SELECT Id, Owner.Name, Lead.Owner.Id, x.owner.lastname, OwnerId FROM Lead x "
        "WHERE id = '" + L1 + "'",
        [L1, "Admin User", U1, "User", U1],
    ),
    R("SELECT Account__r.Name FROM Gadget__c WHERE Id = '" + G2 + "'", ["acme labs"]),
    I("SELECT Id FROM Gadget__c WHERE Account__r.Industry = 'technology'", G1, G2),
    # ---- comparison operators on text (case-insensitive) -------------------------------------
    I("SELECT Id FROM Contact WHERE LastName = 'SMITH'", C1, C2),
    I("SELECT Id FROM Contact WHERE LastName != 'smith'", C3, C4, C5),
    I("SELECT Id FROM Contact WHERE LastName <> 'Smith'", C3, C4, C5),
    I("SELECT Id FROM Contact WHERE LastName < 'M'", C3),
    I("SELECT Id FROM Contact WHERE LastName <= 'jones'", C3),
    I("SELECT Id FROM Contact WHERE LastName > 'o'", C1, C2, C4),
    I("SELECT Id FROM Contact WHERE LastName >= 'SMITH'", C1, C2),
    I("SELECT Id FROM Contact WHERE LastName = 'O\\'Brien'", C4),
    I("SELECT Id FROM Contact WHERE LastName = 'müller'", C5),
    I("SELECT Id FROM Contact WHERE FirstName != 'Ann'", C2, C3, C4, C5),
    I("SELECT Id FROM Contact WHERE FirstName = null", C5),
    I("SELECT Id FROM Contact WHERE FirstName = NULL", C5),
    I("SELECT Id FROM Contact WHERE Email != null", C1, C3, C4, C5),
    I("SELECT Id FROM Account WHERE Type != 'Customer'", A2, A3, A5),
    I("SELECT Id FROM Account WHERE BillingCity = 'PARIS'", A1, A2),
    I("SELECT Id FROM Account WHERE BillingCity = 'zürich'", A5),
    # ---- LIKE, with escapes -----------------------------------------------------------------
    I("SELECT Id FROM Account WHERE Name LIKE 'acme%'", A1, A2),
    I("SELECT Id FROM Account WHERE Name like 'ACME'", A1),
    I("SELECT Id FROM Account WHERE Name LIKE '%LABS'", A2),
    I("SELECT Id FROM Account WHERE Name LIKE '%e%'", A1, A2, A3, A5),
    I("SELECT Id FROM Account WHERE Name LIKE 'Glob_x'", A3),
    I("SELECT Id FROM Account WHERE Name LIKE '%\\_%'", A5),
    I("SELECT Id FROM Account WHERE Industry LIKE '%\\%%'", A5),
    I("SELECT Id FROM Gadget__c WHERE Code__c LIKE 'x\\_1'", G1),
    I("SELECT Id FROM Gadget__c WHERE Code__c LIKE 'x_1'", G1, G2, G3),
    I("SELECT Id FROM Gadget__c WHERE Code__c LIKE 'x\\%1'", G2),
    I("SELECT Id FROM Gadget__c WHERE Code__c LIKE 'x\\\\1'", G3),
    I("SELECT Id FROM Contact WHERE (NOT LastName LIKE 's%')", C3, C4, C5),
    # ---- IN / NOT IN ------------------------------------------------------------------------
    I("SELECT Id FROM Contact WHERE LastName IN ('jones', 'O\\'Brien')", C3, C4),
    I("SELECT Id FROM Contact WHERE LastName NOT IN ('smith')", C3, C4, C5),
    I("SELECT Id FROM Contact WHERE FirstName NOT IN ('Ann', 'Bob')", C3, C4, C5),
    I("SELECT Id FROM Contact WHERE FirstName IN ('Ann', null)", C1, C5),
    I(f"SELECT Id FROM Contact WHERE AccountId IN ('{A1}', '{A3[:15]}')", C1, C2, C4),
    I(f"SELECT Id FROM Contact WHERE AccountId NOT IN ('{A1}')", C3, C4, C5),
    I("SELECT Id FROM Account WHERE NumberOfEmployees IN (5, 50)", A2, A5),
    I("SELECT Id FROM Gadget__c WHERE Due__c IN (TODAY, 2023-12-31)", G1, G4),
    I("SELECT Id FROM Gadget__c WHERE Due__c NOT IN (TODAY, TOMORROW)", G3, G4),
    I("SELECT Id FROM Gadget__c WHERE Seen__c IN (TODAY, TOMORROW)", G1, G2),
    I(
        "SELECT Id FROM Gadget__c WHERE Seen__c IN (2024-05-15T12:00:00Z, 2023-12-31T23:00:00.000+0000)",
        G1,
        G4,
    ),
    # ---- INCLUDES / EXCLUDES ----------------------------------------------------------------
    I("SELECT Id FROM Gadget__c WHERE Tags__c INCLUDES ('A')", G1),
    I("SELECT Id FROM Gadget__c WHERE Tags__c includes ( 'C' )", G2, G4),
    I("SELECT Id FROM Gadget__c WHERE Tags__c INCLUDES ('a;b')", G1),
    I("SELECT Id FROM Gadget__c WHERE Tags__c INCLUDES ('A;C')"),
    I("SELECT Id FROM Gadget__c WHERE Tags__c INCLUDES ('A', 'C')", G1, G2, G4),
    I("SELECT Id FROM Gadget__c WHERE Tags__c EXCLUDES ('C')", G1, G3),
    I("SELECT Id FROM Gadget__c WHERE Tags__c EXCLUDES ('A', 'B')", G3, G4),
    I("SELECT Id FROM Gadget__c WHERE Tags__c = 'a;b'", G1),
    # ---- booleans, numbers, currency ---------------------------------------------------------
    I("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = true", C2),
    I("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = FALSE", C1, C3, C4, C5),
    I("SELECT Id FROM Contact WHERE HasOptedOutOfEmail != True", C1, C3, C4, C5),
    I("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = null", C1, C3, C4, C5),
    I("SELECT Id FROM Contact WHERE HasOptedOutOfEmail != null", C2),
    I("SELECT Id FROM Gadget__c WHERE Active__c IN (null, true)", G1, G2, G3, G4),
    I("SELECT Id FROM Account WHERE NumberOfEmployees > 5", A1, A3, A5),
    I("SELECT Id FROM Account WHERE NumberOfEmployees >= 5", *ACCOUNTS),
    I("SELECT Id FROM Account WHERE NumberOfEmployees < 50", A1, A2),
    I("SELECT Id FROM Account WHERE NumberOfEmployees <= 50", A1, A2, A5),
    I("SELECT Id FROM Account WHERE NumberOfEmployees != 10", A2, A3, A5),
    I("SELECT Id FROM Account WHERE AnnualRevenue = 1500", A1),
    I("SELECT Id FROM Account WHERE AnnualRevenue > 1000.5", A1, A5),
    I("SELECT Id FROM Account WHERE AnnualRevenue = USD1500", A1),
    I("SELECT Id FROM Account WHERE AnnualRevenue < USD300.50", A2),
    I("SELECT Id FROM Account WHERE AnnualRevenue = null", A3),
    I("SELECT Id FROM Gadget__c WHERE Score__c < 0", G2),
    I("SELECT Id FROM Gadget__c WHERE Score__c = -2", G2),
    I("SELECT Id FROM Gadget__c WHERE Score__c > -2.5 AND Score__c < 1e2", G1, G2),
    I("SELECT Id FROM Gadget__c WHERE Price__c = 99.99", G4),
    I("SELECT Id FROM Gadget__c WHERE Price__c >= 0.5", G1, G3, G4),
    I("SELECT Id FROM Gadget__c WHERE Qty__c = 0", G2),
    I("SELECT Id FROM Opportunity WHERE Probability > 50", O1),
    # ---- dates and datetimes, every lexical form (query.md §2.2) ------------------------------
    I("SELECT Id FROM Contact WHERE Birthdate > 1990-01-01", C1, C4),
    I("SELECT Id FROM Contact WHERE Birthdate = 2000-02-29", C4),
    I("SELECT Id FROM Contact WHERE Birthdate <= 1985-12-31", C2, C5),
    I("SELECT Id FROM Contact WHERE Birthdate != 1970-01-01", C1, C2, C3, C4),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T10:00:00Z", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T10:00:00z", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T10:00:00.000Z", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T10:00:00.000000Z", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T10:00:00.000+0000", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T10:00:00.000+00:00", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T11:00:00+01:00", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T05:00:00-0500", C1),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T12:00:00.001000000+02:00", C3),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate = 2024-03-01T10:00:00.0005Z"),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate >= 2024-03-01T10:00:00.0005Z", C3),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate > 2024-03-01T10:00:00.0005Z", C3),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate <= 2024-03-01T10:00:00.0005Z", C1, C4),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate < 2024-03-01T10:00:00.001Z", C1, C4),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate != 2024-03-01T10:00:00Z", C2, C3, C4, C5),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate > 2023-12-31T23:59:59.998Z", C1, C3, C4),
    I("SELECT Id FROM Contact WHERE EmailBouncedDate < 2024-01-01T00:00:00Z", C4),
    I(
        "SELECT Id FROM Account WHERE SystemModstamp >= 2024-01-05T00:00:00.000+00:00 AND "
        "SystemModstamp < 2024-01-08T00:00:00.000+00:00",
        A2,
        A3,
    ),
    I(
        "SELECT Id FROM Account WHERE LastModifiedDate >= 2024-01-04T01:00:00Z AND "
        "LastModifiedDate < 2024-01-05T01:00:00Z",
        A1,
    ),
    I(
        "SELECT Id FROM Account WHERE CreatedDate > 2024-01-05T00:00:00Z ORDER BY CreatedDate DESC",
        A5,
        A3,
    ),
    I(f"SELECT Id FROM Account WHERE Id >= '{A2}' AND Id < '{A5}'", A2, A3),
    I(f"SELECT Id FROM Account WHERE Id > '{A1[:15]}'", A2, A3, A5),
    # ---- relative date literals: every documented one ----------------------------------------
    D("Due__c = YESTERDAY"),
    D("Due__c > YESTERDAY", G1, G2),
    D("Due__c = TODAY", G1),
    D("Due__c = TOMORROW", G2),
    D("Due__c > LAST_WEEK", G1, G2),
    D("Due__c < LAST_WEEK", G4),
    D("Due__c = THIS_WEEK", G1, G2),
    D("Due__c < NEXT_WEEK", G1, G2, G4),
    D("Due__c <= LAST_MONTH", G4),
    D("Due__c = THIS_MONTH", G1, G2),
    D("Due__c < NEXT_MONTH", G1, G2, G4),
    D("Due__c = LAST_90_DAYS", G1),
    D("Due__c = NEXT_90_DAYS", G2),
    D("Due__c = THIS_QUARTER", G1, G2),
    D("Due__c < LAST_QUARTER", G4),
    D("Due__c < NEXT_QUARTER", G1, G2, G4),
    D("Due__c = THIS_YEAR", G1, G2),
    D("Due__c = LAST_YEAR", G4),
    D("Due__c < NEXT_YEAR", G1, G2, G4),
    D("Due__c = THIS_FISCAL_QUARTER", G1, G2),
    D("Due__c < LAST_FISCAL_QUARTER", G4),
    D("Due__c >= NEXT_FISCAL_QUARTER"),
    D("Due__c = THIS_FISCAL_YEAR", G1, G2),
    D("Due__c = LAST_FISCAL_YEAR", G4),
    D("Due__c >= NEXT_FISCAL_YEAR"),
    D("Due__c = LAST_N_DAYS:1", G1),
    D("Due__c = NEXT_N_DAYS:1", G2),
    D("Due__c = N_DAYS_AGO:136", G4),
    D("Due__c < NEXT_N_WEEKS:1", G1, G2, G4),
    D("Due__c = LAST_N_WEEKS:20", G4),
    D("Due__c = N_WEEKS_AGO:19", G4),
    D("Due__c = N_WEEKS_AGO:20"),
    D("Due__c = NEXT_N_MONTHS:1"),
    D("Due__c = LAST_N_MONTHS:5", G4),
    D("Due__c = N_MONTHS_AGO:5", G4),
    D("Due__c < NEXT_N_QUARTERS:2", G1, G2, G4),
    D("Due__c = LAST_N_QUARTERS:2", G4),
    D("Due__c = N_QUARTERS_AGO:2", G4),
    D("Due__c >= NEXT_N_YEARS:1"),
    D("Due__c = LAST_N_YEARS:1", G4),
    D("Due__c = N_YEARS_AGO:1", G4),
    D("Due__c >= NEXT_N_FISCAL_QUARTERS:2"),
    D("Due__c = LAST_N_FISCAL_QUARTERS:2", G4),
    D("Due__c = N_FISCAL_QUARTERS_AGO:2", G4),
    D("Due__c < NEXT_N_FISCAL_YEARS:1", G1, G2, G4),
    D("Due__c = LAST_N_FISCAL_YEARS:1", G4),
    D("Due__c = N_FISCAL_YEARS_AGO:1", G4),
    D("Due__c != TODAY", G2, G3, G4),
    D("Seen__c = TODAY", G1),
    D("Seen__c = TOMORROW", G2),
    D("Seen__c < TODAY", G4),
    D("Seen__c <= TODAY", G1, G4),
    D("Seen__c > TODAY", G2),
    D("Seen__c >= TODAY", G1, G2),
    I("SELECT Id FROM Gadget__c WHERE Seen__c = TODAY", G1, G2, tz="America/New_York"),
    I("SELECT Id FROM Gadget__c WHERE Seen__c = LAST_YEAR", G4, tz="America/New_York"),
    # ---- date functions in WHERE ------------------------------------------------------------
    I("SELECT Id FROM Contact WHERE CALENDAR_YEAR(Birthdate) = 1990", C1),
    I("SELECT Id FROM Contact WHERE CALENDAR_MONTH(Birthdate) = 12", C2),
    I("SELECT Id FROM Contact WHERE DAY_IN_MONTH(Birthdate) = 29", C4),
    I("SELECT Id FROM Contact WHERE CALENDAR_QUARTER(Birthdate) > 1", C1, C2),
    D("DAY_IN_WEEK(Due__c) = 4", G1),
    D("DAY_IN_YEAR(Due__c) = 365", G4),
    D("CALENDAR_QUARTER(Due__c) = 2", G1, G2),
    D("FISCAL_YEAR(Due__c) = 2023", G4),
    D("FISCAL_MONTH(Due__c) = 5", G1, G2),
    D("FISCAL_QUARTER(Due__c) = 4", G4),
    D("WEEK_IN_MONTH(Due__c) = 3", G1, G2),
    D("WEEK_IN_YEAR(Due__c) = 53", G4),
    D("HOUR_IN_DAY(Seen__c) = 0", G2),
    D("DAY_ONLY(Seen__c) = 2024-05-16", G2),
    D("CALENDAR_YEAR(Seen__c) = 2023", G4),
    I("SELECT Id FROM Account WHERE CALENDAR_YEAR(CreatedDate) = 2024", *ACCOUNTS),
    # ---- AND / OR / NOT and Salesforce's parenthesis rules (SQ-03) ----------------------------
    I("SELECT Id FROM Account WHERE (NOT Name = 'Acme') AND Industry = 'Technology'", A2),
    I("SELECT Id FROM Account WHERE NOT Name LIKE 'a%'", A3, A5),
    I("SELECT Id FROM Account WHERE NOT (Type = 'Customer')", A2, A3, A5),
    I(
        "SELECT Id FROM Account WHERE Industry = 'Energy' OR (Type = 'Partner' AND "
        "NumberOfEmployees > 10)",
        A3,
        A5,
    ),
    I(
        "SELECT Id FROM Account WHERE (Industry = 'Energy' OR Type = 'Partner') AND "
        "NumberOfEmployees > 100",
        A3,
    ),
    I("SELECT Id FROM Account WHERE Name = 'Acme' AND (NOT (Type = 'Prospect'))", A1),
    I("SELECT Id FROM Account WHERE ((Name = 'Acme'))", A1),
    I("SELECT Id FROM Account WHERE Name = 'Acme' OR Name = 'Globex' OR Name = 'nope'", A1, A3),
    E(
        "SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Industry = 'c'",
        "MALFORMED_QUERY",
        "unexpected token: OR",
    ),
    E(
        "SELECT Id FROM Account WHERE Name = 'a' OR Type = 'b' AND Industry = 'c'",
        "MALFORMED_QUERY",
        "unexpected token: AND",
    ),
    E(
        "SELECT Id FROM Account WHERE Name = 'a' AND NOT (Type = 'b')",
        "MALFORMED_QUERY",
        "unexpected token: 'NOT'",
    ),
    # ---- semi-joins and anti-joins ------------------------------------------------------------
    I("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", A1, A2, A3),
    I("SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)", A5),
    I(
        "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity WHERE Amount > 1000)",
        A1,
    ),
    I(
        "SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE "
        "Industry = 'Technology') AND LastName = 'smith'",
        C1,
        C2,
    ),
    I(
        "SELECT Id FROM Contact WHERE AccountId NOT IN (SELECT Id FROM Account WHERE "
        "Industry = 'Technology')",
        C4,
        C5,
    ),
    E(
        "SELECT Id FROM Account WHERE Name = 'x' OR Id IN (SELECT AccountId FROM Contact)",
        "MALFORMED_QUERY",
        "Semi join sub-selects are only allowed at the top level WHERE "
        "expressions and not in nested WHERE expressions.",
    ),
    # ---- ORDER BY: several keys, ASC/DESC, NULLS FIRST/LAST, case-insensitive text -----------
    I("SELECT Id FROM Contact ORDER BY LastName", C3, C5, C4, C1, C2),
    I("SELECT Id FROM Contact ORDER BY LastName DESC", C1, C2, C4, C5, C3),
    I("SELECT Id FROM Contact ORDER BY Email", C2, C1, C3, C4, C5),
    I("SELECT Id FROM Contact ORDER BY Email DESC", C5, C4, C3, C1, C2),
    I("SELECT Id FROM Contact ORDER BY Email ASC NULLS LAST", C1, C3, C4, C5, C2),
    I("SELECT Id FROM Contact ORDER BY Email DESC NULLS FIRST", C2, C5, C4, C3, C1),
    I("SELECT Id FROM Contact ORDER BY Account.Name DESC, FirstName", C4, C3, C1, C2, C5),
    I("SELECT Id FROM Contact ORDER BY Birthdate DESC", C4, C1, C2, C5, C3),
    I(
        "SELECT Id FROM Contact ORDER BY EmailBouncedDate DESC NULLS LAST, LastName",
        C3,
        C1,
        C4,
        C5,
        C2,
    ),
    I("SELECT Id FROM Account ORDER BY NumberOfEmployees", A2, A1, A5, A3),
    I("SELECT Id FROM Account ORDER BY AnnualRevenue DESC NULLS LAST", A5, A1, A2, A3),
    I("SELECT Id FROM Gadget__c ORDER BY Active__c, Name", G2, G4, G1, G3),
    I("SELECT Id FROM Gadget__c ORDER BY Name", G1, G2, G3, G4),
    I("SELECT Id FROM Contact ORDER BY Account.Owner.Name, Id DESC", C5, C4, C2, C1, C3),
    # ---- LIMIT, OFFSET -----------------------------------------------------------------------
    I("SELECT Id FROM Contact ORDER BY LastName LIMIT 2", C3, C5),
    I("SELECT Id FROM Contact Limit 1", C1),
    I("SELECT Id FROM Contact LIMIT 0"),
    I("SELECT Id FROM Contact ORDER BY LastName LIMIT 2 OFFSET 1", C5, C4),
    I("SELECT Id FROM Contact OFFSET 3", C4, C5),
    E(
        "SELECT Id FROM Contact OFFSET 2001",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "Maximum SOQL offset allowed is 2000",
    ),
    # ---- keywords as names -------------------------------------------------------------------
    R("SELECT Id, Name FROM Group ORDER BY Name", [GR2, "Admins"], [GR1, "Sales"]),
    R("SELECT Name FROM Order o WHERE o.Account.Name = 'acme'", ["Order 1"]),
    R("SELECT Name FROM Order ORDER BY Name LIMIT 1", ["Order 1"]),
    R("SELECT Name FROM Group WHERE Name = 'Sales'", ["Sales"]),
    I("SELECT Id FROM Order", OR1),
    # ---- queryAll, scope and options accepted on REST ----------------------------------------
    I("SELECT Id FROM Account", A1, A2, A3, A4, A5, all_rows=True),
    R(
        "SELECT Name, IsDeleted FROM Account WHERE IsDeleted = true",
        ["Initech", True],
        all_rows=True,
    ),
    I("SELECT Id FROM Contact WHERE LastName = 'Deleted'"),
    I("SELECT Id FROM Account WHERE Name = 'Acme' FOR VIEW", A1),
    I("SELECT Id FROM Account WHERE Name = 'Acme' FOR REFERENCE", A1),
    I("SELECT Id FROM Account USING SCOPE everything WHERE Name = 'Acme'", A1),
    I("SELECT Id FROM Account WHERE Name = 'Acme' WITH SECURITY_ENFORCED", A1),
    # ---- aggregates (REST) -------------------------------------------------------------------
    R("SELECT COUNT(Id) FROM Contact", [5]),
    R("SELECT COUNT(Email) cnt FROM Contact", [4]),
    R(
        "SELECT Industry, COUNT(Id) cnt FROM Account GROUP BY Industry ORDER BY Industry",
        ["Energy", 1],  # picklist order; Bio%Tech is not one of its values
        ["Technology", 2],
        ["Bio%Tech", 1],
    ),
    R(
        "SELECT MAX(AnnualRevenue), MIN(Name), SUM(NumberOfEmployees), AVG(NumberOfEmployees) "
        "FROM Account",
        [5000.0, "Acme", 265, 66.25],
    ),
    R("SELECT COUNT_DISTINCT(Industry), COUNT_DISTINCT(BillingCity) FROM Account", [3, 3]),
    R("SELECT Industry FROM Account GROUP BY Industry HAVING COUNT(Id) > 1", ["Technology"]),
    R(
        "SELECT CALENDAR_YEAR(CloseDate), COUNT(Id) FROM Opportunity GROUP BY "
        "CALENDAR_YEAR(CloseDate) ORDER BY CALENDAR_YEAR(CloseDate)",
        [2023, 1],
        [2024, 2],
    ),
    R(
        "SELECT Account.Name, SUM(Amount) total FROM Opportunity GROUP BY Account.Name "
        "ORDER BY Account.Name",
        ["Acme", 5000.0],
        ["acme labs", 100.25],
        ["Globex", None],
    ),
    R(
        "SELECT Industry, COUNT(Id) FROM Account GROUP BY Industry ORDER BY COUNT(Id) DESC, "
        "Industry",
        ["Technology", 2],
        ["Energy", 1],
        ["Bio%Tech", 1],
    ),
    R(
        "SELECT StageName, MIN(CloseDate), MAX(CloseDate) FROM Opportunity GROUP BY StageName "
        "ORDER BY StageName",
        ["Prospecting", dt.date(2023, 11, 5), dt.date(2024, 1, 15)],
        ["Closed Won", dt.date(2024, 6, 30), dt.date(2024, 6, 30)],
    ),
    R(
        "SELECT Active__c, COUNT(Id) FROM Gadget__c GROUP BY Active__c ORDER BY Active__c",
        [False, 2],
        [True, 2],
    ),
    E(
        "SELECT Name FROM Account GROUP BY Industry",
        "MALFORMED_QUERY",
        "Field must be grouped or aggregated: Name",
    ),
    E(
        "SELECT SUM(Name) FROM Account",
        "MALFORMED_QUERY",
        "field Name does not support aggregate operator SUM",
    ),
    # ---- FIELDS() ----------------------------------------------------------------------------
    E(
        "SELECT FIELDS(ALL) FROM Account",
        "MALFORMED_QUERY",
        "The SOQL FIELDS function is not supported with an unbounded set of fields in this API.",
    ),
    E(
        "SELECT FIELDS(CUSTOM) FROM Gadget__c LIMIT 201",
        "MALFORMED_QUERY",
        "The SOQL FIELDS function is not supported with an unbounded set of fields in this API.",
    ),
    R(
        "SELECT FIELDS(CUSTOM) FROM Gadget__c WHERE Id = '" + G4 + "' LIMIT 200",
        [
            "C",
            100.0,
            7,
            99.99,
            False,
            dt.date(2023, 12, 31),
            dt.datetime(2023, 12, 31, 23, tzinfo=UTC),
            A3,
            None,
            None,
            None,
            None,
        ],
    ),
    E(
        "SELECT FIELDS(STANDARD) FROM Account",
        "MALFORMED_QUERY",
        "The SOQL FIELDS function is not supported with an unbounded set of fields in this API.",
        api=Api.BULK1,
    ),
    E(
        "SELECT FIELDS(ALL) FROM Account LIMIT 10",
        "API_ERROR",
        "The SOQL FIELDS function is not supported with an unbounded set of fields in this API.",
        api=Api.BULK2,
    ),
    # ---- per-API refusals --------------------------------------------------------------------
    I("SELECT Id FROM Account WHERE Name LIKE 'a%' ORDER BY Name LIMIT 5", A1, A2, api=Api.BULK2),
    I("SELECT Id FROM Account WHERE Name LIKE 'a%'", A1, A2, api=Api.BULK1),
    E(
        "SELECT COUNT() FROM Account",
        "API_ERROR",
        "Aggregate functions not supported in Bulk Query",
        api=Api.BULK2,
    ),
    E(
        "SELECT COUNT() FROM Account",
        "FUNCTIONALITY_NOT_ENABLED",
        "Aggregate functions not supported in Bulk Query",
        api=Api.BULK1,
    ),
    E(
        "SELECT Industry FROM Account GROUP BY Industry",
        "API_ERROR",
        "GROUP BY not supported in Bulk Query",
        api=Api.BULK2,
    ),
    E(
        "SELECT Id FROM Account LIMIT 5 OFFSET 1",
        "FUNCTIONALITY_NOT_ENABLED",
        "OFFSET not supported in Bulk Query",
        api=Api.BULK1,
    ),
    E(
        "SELECT TYPEOF What WHEN Account THEN Name END FROM Task",
        "API_ERROR",
        "TYPEOF not supported in Bulk Query",
        api=Api.BULK2,
    ),
    E(
        "SELECT Name, (SELECT LastName FROM Contacts) FROM Account",
        "API_ERROR",
        "Aggregate Relationships not supported in Bulk V2 Query with CSV content type.",
        api=Api.BULK2,
    ),
    E(
        "SELECT Id, Addr__c FROM Gadget__c",
        "FUNCTIONALITY_NOT_ENABLED",
        "Selecting compound data not supported in Bulk Query",
        api=Api.BULK1,
    ),
    E(
        "SELECT Id, Addr__c FROM Gadget__c",
        "API_ERROR",
        "Selecting compound data not supported in Bulk Query",
        api=Api.BULK2,
    ),
    # ---- malformed and invalid (query.md §4) --------------------------------------------------
    E(
        "select id from account where",
        "MALFORMED_QUERY",
        "\nselect id from account where\n                            ^\n"
        "ERROR at Row:1:Column:29\nunexpected token: '<EOF>'",
    ),
    E(
        "select Id, Company,Email,LastName,SF_date__c, ConvertedContactId from Lead",
        "INVALID_FIELD",
        "\nselect Id, Company,Email,LastName,SF_date__c, ConvertedContactId from\n"
        "                                  ^\nERROR at Row:1:Column:35\n"
        "No such column 'SF_date__c' on entity 'Lead'. " + UNKNOWN_FIELD_TAIL,
    ),
    E(
        "SELECT Id, Name FROM vlocity_cmt__VlocityDataStore__c",
        "INVALID_TYPE",
        "\nSELECT Id, Name FROM vlocity_cmt__VlocityDataStore__c\n                     ^\n"
        "ERROR at Row:1:Column:22\nsObject type 'vlocity_cmt__VlocityDataStore__c' is not "
        "supported. If you are attempting to use a custom object, be sure to append the '__c' "
        "after the entity name. Please reference your WSDL or the describe call for the "
        "appropriate names.",
    ),
    E(
        "SELECT Id FROM Contact\nWHERE Nope__c = 1",
        "INVALID_FIELD",
        "\nWHERE Nope__c = 1\n      ^\nERROR at Row:2:Column:7\nNo such column 'Nope__c' on "
        "entity 'Contact'. " + UNKNOWN_FIELD_TAIL,
    ),
    E(
        "SELECT Account.Nope__r.Name FROM Contact",
        "INVALID_FIELD",
        "Didn't understand relationship 'Nope__r' in field path. If you are attempting to use a "
        "custom relationship, be sure to append the '__r' after the custom relationship name. "
        "Please reference your WSDL or the describe call for the appropriate names.",
    ),
    E(
        "SELECT Id FROM Contact WHERE LoginTime > 2019-04-15T02:40:03 0000",
        "MALFORMED_QUERY",
        "no viable alternative at character ' '",
    ),
    E(
        "SELECT Id FROM Contact WHERE CreatedDate > 2024-01-01",
        "INVALID_FIELD",
        "value of filter criterion for field 'CreatedDate' must be of type dateTime and should "
        "not be enclosed in quotes",
    ),
    E(
        "SELECT Id FROM Contact WHERE Birthdate = 2024-01-01T00:00:00Z",
        "INVALID_FIELD",
        "value of filter criterion for field 'Birthdate' must be of type date and should not be "
        "enclosed in quotes",
    ),
    E(
        "SELECT Id FROM Contact WHERE HasOptedOutOfEmail = 'true'",
        "INVALID_FIELD",
        "value of filter criterion for field 'HasOptedOutOfEmail' must be of type boolean and "
        "should not be enclosed in quotes",
    ),
    E(
        "SELECT Id FROM Account WHERE NumberOfEmployees = '5'",
        "INVALID_FIELD",
        "value of filter criterion for field 'NumberOfEmployees' must be of type integer and "
        "should not be enclosed in quotes",
    ),
    E(
        "SELECT Id FROM Account WHERE Name = 5",
        "INVALID_FIELD",
        "value of filter criterion for field 'Name' must be of type string and should be "
        "enclosed in quotes",
    ),
    E(
        "SELECT Id FROM Account WHERE Id = 'abc'",
        "INVALID_QUERY_FILTER_OPERATOR",
        "invalid ID field: abc",
    ),
    E("SELECT Id, Name, id FROM Account", "MALFORMED_QUERY", "duplicate field selected: Id"),
    E("SELECT Id FROM Account WHERE Name IS NULL", "MALFORMED_QUERY", "unexpected token: 'IS'"),
    E("SELECT FROM Account", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
    E("SELECT Id FROM Account LIMIT", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
    E(
        "SELECT Id FROM Account WHERE Name = 'x' AND",
        "MALFORMED_QUERY",
        "unexpected token: '<EOF>'",
    ),
    E(
        "SELECT Id FROM Account /* note */",
        "MALFORMED_QUERY",
        "no viable alternative at character '/'",
    ),
    E(
        "SELECT Id FROM Gadget__c WHERE Due__c = LAST_N_DAYS : 3",
        "MALFORMED_QUERY",
        "unexpected token: ':'",
    ),
    E(
        "SELECT Id FROM Account WHERE Name = 'unterminated",
        "MALFORMED_QUERY",
        "unexpected token: '<EOF>'",
    ),
    E("SELECT Id FROM Account ORDER BY", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
    E("SELECT Id FROM Account extra words", "MALFORMED_QUERY", "unexpected token: words"),
    E(
        "SELECT Id FROM Account WHERE Name LIKE 5",
        "INVALID_FIELD",
        "invalid operator on field 'Name': LIKE",
    ),
    E(
        "SELECT Id FROM Account WHERE Name INCLUDES ('x')",
        "INVALID_FIELD",
        "includes or excludes operator only valid on multipicklist field: Name",
    ),
    E("SELECT Name n FROM Account", "MALFORMED_QUERY", "unexpected token: n"),
    R(
        "SELECT toLabel(StageName), FORMAT(Amount) revenue, convertCurrency(Account.Name) "
        "FROM Opportunity WHERE Id = '" + O1 + "'",
        ["Closed Won", 5000.0, "Acme"],
    ),
    I("SELECT Id FROM Opportunity ORDER BY StageName", O2, O3, O1),
    I("SELECT Id FROM Opportunity ORDER BY StageName DESC, Name", O1, O3, O2),
    I("SELECT Id FROM Account ORDER BY Type", A3, A2, A1, A5),
    I("SELECT Id FROM Account ORDER BY Type DESC", A5, A1, A2, A3),
    D("Alarm__c = 08:30:00.000Z", G1),
    D("Alarm__c > 08:30:00Z", G2),
    D("Alarm__c < 08:30:00.001Z", G1, G3),
    I("SELECT Id FROM Gadget__c WHERE Alarm__c != null ORDER BY Alarm__c DESC", G2, G1, G3),
    R("SELECT Alarm__c FROM Gadget__c WHERE Id = '" + G2 + "'", [dt.time(23, 59, 59, 999000)]),
    I("SELECT Id FROM Account WHERE NumberOfEmployees < 99999999999999999999", *ACCOUNTS),
    I("SELECT Id FROM Account WHERE AnnualRevenue > -1E300", A1, A2, A5),
    E(
        "SELECT Id FROM Account LIMIT 99999999999",
        "MALFORMED_QUERY",
        "unexpected token: 99999999999",
    ),
    E(
        "SELECT Id FROM Account WHERE " + "(" * 60 + "Name = 'x'" + ")" * 60,
        "MALFORMED_QUERY",
        "Query is too deeply nested",
    ),
    E(
        "SELECT Id FROM Account WHERE Name IN (" + ", ".join(["'abcdefgh'"] * 10000) + ")",
        "MALFORMED_QUERY",
        "SOQL statements cannot be longer than 100,000 characters.",
    ),
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Store, Dialect]]:  # fmt: skip
    with open_loaded(request.param, tmp_path_factory.mktemp("conformance")) as pair:
        yield pair


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 150
    assert len({c.soql + c.api + repr(c.kw) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[f"{i:03d}" for i in range(len(CASES))])
def test_statement(loaded: tuple[Store, Dialect], case: Case) -> None:
    store, dialect = loaded
    try:
        parse(case.soql)
        plan = compile_query(case.soql, SCHEMA, api=case.api, dialect=dialect, now=NOW, **case.kw)
    except SoqlError as e:
        assert case.error is not None, f"{case.soql}: unexpected {e.code}: {e.message}"
        code, text = case.error
        assert e.code == code, e.message
        if text.startswith("\n"):
            assert e.message == text
        else:
            assert e.message.endswith(text), e.message
            if (
                code in ("MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE")
                and case.api is Api.REST
                and "longer than" not in text  # the length limit points nowhere
            ):
                assert "\nERROR at Row:" in e.message
        return
    assert case.error is None, f"{case.soql}: expected {case.error}"
    text, params = plan.sql()
    got = [plan.values(r) for r in store.query_rows(text, params)]
    assert got == case.rows
    if plan.count_only or plan.aggregate:
        return
    (count,) = next(store.query_rows(*plan.count_sql()))
    assert count == len(got)
