# cython: language_level=3, boundscheck=False, wraparound=False
"""tree → model in C: the same builder as ``hub.cap.parse._alert``, walking libxml2's nodes.

Reading an element through lxml from Python costs a proxy object, a ``{namespace}name``
string for its tag and another for its text: about three quarters of parsing a valid alert
(the rest is libxml2's parse and schema validation). Here each node is read where libxml2
keeps it: the tag compared as bytes, the text decoded once. Only the model's own objects are
made. The schema has validated the tree before (structure, order, enumerations, datatypes).

``build(root)`` returns the ``Alert``, or None for anything it does not handle the plain way
(an element after an XML-DSig one, an entity reference node, a value the model cannot hold):
the Python builder then does the work and says what is wrong. It never raises on a document.
Both builders are held to the same result by ``tests/cap/test_build.py``.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport strcmp, strlen

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree

from dataclasses import fields
from datetime import datetime
from decimal import Decimal, InvalidOperation

from hub.cap.model import (
    NAMESPACE, Alert, Area, Category, Certainty, Circle, EventCode, Geocode, Info, MsgType,
    Parameter, Polygon, Resource, ResponseType, Scope, Severity, Status, Urgency,
)

cdef extern from "Python.h":
    int PyObject_GenericSetAttr(object obj, object name, object value) except -1

cetree.import_lxml__etree()

cdef bytes _NS = NAMESPACE.encode()
cdef const char* NS = _NS
cdef dict STATUS = {m.value: m for m in Status}
cdef dict MSG_TYPE = {m.value: m for m in MsgType}
cdef dict SCOPE = {m.value: m for m in Scope}
cdef dict CATEGORY = {m.value: m for m in Category}
cdef dict RESPONSE = {m.value: m for m in ResponseType}
cdef dict URGENCY = {m.value: m for m in Urgency}
cdef dict SEVERITY = {m.value: m for m in Severity}
cdef dict CERTAINTY = {m.value: m for m in Certainty}


# The model's classes are frozen dataclasses with slots and no __post_init__: their __init__
# sets each field with object.__setattr__, which is PyObject_GenericSetAttr. Doing that here,
# field by field in the model's own order, makes the same object without a Python call per
# field (the model's construction was most of what was left).
cdef object _new = object.__new__
cdef dict FIELDS = {cls: tuple(f.name for f in fields(cls))
                    for cls in (Alert, Info, Resource, Area, EventCode, Parameter, Geocode, Polygon, Circle)}


cdef object make(type cls, values):
    cdef tuple names = <tuple>FIELDS[cls]
    cdef Py_ssize_t i, n = len(names)
    if n != len(values):
        raise _Odd()
    obj = _new(cls)
    if type(values) is tuple:
        for i in range(n):
            PyObject_GenericSetAttr(obj, names[i], (<tuple>values)[i])
    else:
        for i in range(n):
            PyObject_GenericSetAttr(obj, names[i], (<list>values)[i])
    return obj


class _Odd(Exception):
    """Leave this document to the Python builder."""


cdef inline bint is_cap(tree.xmlNode* node) noexcept:
    return node.ns != NULL and strcmp(<const char*>node.ns.href, NS) == 0


cdef inline str piece(tree.xmlNode* node):
    if node.content == NULL:
        return ""
    return PyUnicode_DecodeUTF8(<const char*>node.content, strlen(<const char*>node.content), NULL)


cdef str text(tree.xmlNode* el):
    """The element's text: its text and CDATA children joined (comments and PIs skipped)."""
    cdef tree.xmlNode* child = el.children
    cdef tree.xmlNode* only = NULL
    cdef int pieces = 0
    while child != NULL:
        if child.type == tree.XML_TEXT_NODE or child.type == tree.XML_CDATA_SECTION_NODE:
            only = child
            pieces += 1
        elif child.type == tree.XML_ENTITY_REF_NODE or child.type == tree.XML_ELEMENT_NODE:
            raise _Odd()
        child = child.next
    if pieces == 0:
        return ""
    if pieces == 1:
        return piece(only)
    out = []
    child = el.children
    while child != NULL:
        if child.type == tree.XML_TEXT_NODE or child.type == tree.XML_CDATA_SECTION_NODE:
            out.append(piece(child))
        child = child.next
    return "".join(out)


cdef inline tree.xmlNode* next_element(tree.xmlNode* node) noexcept:
    while node != NULL and node.type != tree.XML_ELEMENT_NODE:
        node = node.next
    return node


cdef tuple pair(tree.xmlNode* el):
    """valueName and value: the two elements the schema requires, in that order."""
    cdef tree.xmlNode* name = next_element(el.children)
    if name == NULL:
        raise _Odd()
    cdef tree.xmlNode* value = next_element(name.next)
    if value == NULL:
        raise _Odd()
    return text(name), text(value)


cdef object when(str value):
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:  # 24:00:00 and the like: the Python builder knows them
        raise _Odd()


cdef object lookup(dict table, str value):
    found = table.get(value)
    if found is None:
        raise _Odd()
    return found


# What each child element is, per parent, in the model's field order: (name, kind, slot).
# Kinds: plain text, stripped text (xs:language, xs:anyURI), a time, an enumeration (its
# table in ENUMS), the repeated ones from REPEATED_TEXT to AREA (appended to the list at
# ``slot``, a tuple in the model; INFO, RESOURCE and AREA built by their own tables), a size, a
# decimal. Slots are positions in the model's arguments, as in hub.cap.parse.
cdef enum Kind:
    TEXT, STRIPPED, TIME, ENUM, REPEATED_TEXT, REPEATED_ENUM, PAIR, POLYGON, CIRCLE, INFO, RESOURCE, AREA,
    SIZE, DECIMAL

cdef struct Field:
    const char* name
    Kind kind
    int slot
    int table  # ENUMS index for ENUM kinds; the pair's class (PAIRS index) for PAIR

cdef list ENUMS = [STATUS, MSG_TYPE, SCOPE, URGENCY, SEVERITY, CERTAINTY, CATEGORY, RESPONSE]
cdef list PAIRS = [EventCode, Parameter, Geocode]

cdef Field ALERT[14]
ALERT[:] = [
    Field("identifier", TEXT, 0, 0), Field("sender", TEXT, 1, 0), Field("sent", TIME, 2, 0),
    Field("status", ENUM, 3, 0), Field("msgType", ENUM, 4, 1), Field("source", TEXT, 6, 0),
    Field("scope", ENUM, 5, 2), Field("restriction", TEXT, 7, 0), Field("addresses", TEXT, 8, 0),
    Field("code", REPEATED_TEXT, 9, 0), Field("note", TEXT, 10, 0), Field("references", TEXT, 11, 0),
    Field("incidents", TEXT, 12, 0), Field("info", INFO, 13, 0),
]
cdef Field INFO_FIELDS[21]
INFO_FIELDS[:] = [
    Field("language", STRIPPED, 5, 0), Field("category", REPEATED_ENUM, 0, 6), Field("event", TEXT, 1, 0),
    Field("responseType", REPEATED_ENUM, 6, 7), Field("urgency", ENUM, 2, 3),
    Field("severity", ENUM, 3, 4), Field("certainty", ENUM, 4, 5), Field("audience", TEXT, 7, 0),
    Field("eventCode", PAIR, 8, 0), Field("effective", TIME, 9, 0), Field("onset", TIME, 10, 0),
    Field("expires", TIME, 11, 0), Field("senderName", TEXT, 12, 0), Field("headline", TEXT, 13, 0),
    Field("description", TEXT, 14, 0), Field("instruction", TEXT, 15, 0), Field("web", STRIPPED, 16, 0),
    Field("contact", TEXT, 17, 0), Field("parameter", PAIR, 18, 1), Field("resource", RESOURCE, 19, 0),
    Field("area", AREA, 20, 0),
]
cdef Field RESOURCE_FIELDS[6]
RESOURCE_FIELDS[:] = [
    Field("resourceDesc", TEXT, 0, 0), Field("mimeType", TEXT, 1, 0), Field("size", SIZE, 2, 0),
    Field("uri", STRIPPED, 3, 0), Field("derefUri", TEXT, 4, 0), Field("digest", TEXT, 5, 0),
]
cdef Field AREA_FIELDS[6]
AREA_FIELDS[:] = [
    Field("areaDesc", TEXT, 0, 0), Field("polygon", POLYGON, 1, 0), Field("circle", CIRCLE, 2, 0),
    Field("geocode", PAIR, 3, 2), Field("altitude", DECIMAL, 4, 0), Field("ceiling", DECIMAL, 5, 0),
]


def build(cetree._Element root):
    """The ``Alert`` of a schema-valid ``<alert>``, or None (see the module)."""
    try:
        return fill(root._c_node, ALERT, 14, Alert, True)
    except (_Odd, ValueError, InvalidOperation):
        return None


cdef object fill(tree.xmlNode* parent, Field* table, int count, type cls, bint top):
    """The model object ``cls`` of ``parent``: each element child placed by ``table``. Only
    the top level (``<alert>``) may hold foreign (XML-DSig) elements, and only at its end."""
    cdef list values = [None] * count
    cdef tree.xmlNode* el = parent.children
    cdef bint signed = False
    cdef int i
    cdef Field field
    for i in range(count):
        if REPEATED_TEXT <= table[i].kind <= AREA:
            values[table[i].slot] = []
    if cls is Area:
        values[0] = ""
    while el != NULL:
        if el.type == tree.XML_ENTITY_REF_NODE:
            raise _Odd()
        if el.type != tree.XML_ELEMENT_NODE:
            el = el.next
            continue
        if not is_cap(el):
            if not top:
                raise _Odd()
            signed = True
            el = el.next
            continue
        if signed:
            raise _Odd()  # a CAP element after a signature: the Python builder reports it
        i = 0
        while i < count and strcmp(table[i].name, <const char*>el.name) != 0:
            i += 1
        if i == count:
            raise _Odd()
        field = table[i]
        if field.kind == TEXT:
            values[field.slot] = text(el)
        elif field.kind == STRIPPED:
            values[field.slot] = text(el).strip()
        elif field.kind == TIME:
            values[field.slot] = when(text(el))
        elif field.kind == ENUM:
            values[field.slot] = lookup(ENUMS[field.table], text(el))
        elif field.kind == REPEATED_TEXT:
            values[field.slot].append(text(el))
        elif field.kind == REPEATED_ENUM:
            values[field.slot].append(lookup(ENUMS[field.table], text(el)))
        elif field.kind == PAIR:
            values[field.slot].append(make(PAIRS[field.table], pair(el)))
        elif field.kind == POLYGON:
            values[field.slot].append(make(Polygon, (text(el),)))
        elif field.kind == CIRCLE:
            values[field.slot].append(make(Circle, (text(el),)))
        elif field.kind == INFO:
            values[field.slot].append(fill(el, INFO_FIELDS, 21, Info, False))
        elif field.kind == RESOURCE:
            values[field.slot].append(fill(el, RESOURCE_FIELDS, 6, Resource, False))
        elif field.kind == AREA:
            values[field.slot].append(fill(el, AREA_FIELDS, 6, Area, False))
        elif field.kind == SIZE:
            values[field.slot] = int(text(el).strip())
        else:
            values[field.slot] = Decimal(text(el).strip())
        el = el.next
    for i in range(count):
        if REPEATED_TEXT <= table[i].kind <= AREA:
            values[table[i].slot] = tuple(<list>values[table[i].slot])
    return make(cls, values)
