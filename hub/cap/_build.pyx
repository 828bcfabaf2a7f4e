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
    cdef tuple names = FIELDS[cls]
    if len(names) != len(values):
        raise _Odd()
    obj = _new(cls)
    for i in range(len(names)):
        PyObject_GenericSetAttr(obj, names[i], values[i])
    return obj


class _Odd(Exception):
    """Leave this document to the Python builder."""


cdef inline bint is_cap(tree.xmlNode* node) noexcept:
    return node.ns != NULL and strcmp(<const char*>node.ns.href, NS) == 0


cdef inline bint named(tree.xmlNode* node, const char* name) noexcept:
    return strcmp(<const char*>node.name, name) == 0


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


def build(cetree._Element root):
    """The ``Alert`` of a schema-valid ``<alert>``, or None (see the module)."""
    try:
        return _alert(root._c_node)
    except (_Odd, ValueError, InvalidOperation):
        return None


cdef object _alert(tree.xmlNode* root):
    a = [None] * 14
    codes = []
    infos = []
    cdef tree.xmlNode* el = root.children
    cdef bint signed = False
    cdef const char* name
    while el != NULL:
        if el.type == tree.XML_ENTITY_REF_NODE:
            raise _Odd()
        if el.type != tree.XML_ELEMENT_NODE:
            el = el.next
            continue
        if not is_cap(el):
            signed = True
            el = el.next
            continue
        if signed:
            raise _Odd()  # a CAP element after a signature: the Python builder reports it
        name = <const char*>el.name
        if strcmp(name, "info") == 0:
            infos.append(_info(el))
        elif strcmp(name, "identifier") == 0:
            a[0] = text(el)
        elif strcmp(name, "sender") == 0:
            a[1] = text(el)
        elif strcmp(name, "sent") == 0:
            a[2] = when(text(el))
        elif strcmp(name, "status") == 0:
            a[3] = lookup(STATUS, text(el))
        elif strcmp(name, "msgType") == 0:
            a[4] = lookup(MSG_TYPE, text(el))
        elif strcmp(name, "scope") == 0:
            a[5] = lookup(SCOPE, text(el))
        elif strcmp(name, "source") == 0:
            a[6] = text(el)
        elif strcmp(name, "restriction") == 0:
            a[7] = text(el)
        elif strcmp(name, "addresses") == 0:
            a[8] = text(el)
        elif strcmp(name, "code") == 0:
            codes.append(text(el))
        elif strcmp(name, "note") == 0:
            a[10] = text(el)
        elif strcmp(name, "references") == 0:
            a[11] = text(el)
        elif strcmp(name, "incidents") == 0:
            a[12] = text(el)
        else:
            raise _Odd()
        el = el.next
    a[9] = tuple(codes)
    a[13] = tuple(infos)
    return make(Alert, a)


cdef object _info(tree.xmlNode* info):
    v = [None] * 21
    categories = []
    responses = []
    event_codes = []
    parameters = []
    resources = []
    areas = []
    cdef tree.xmlNode* el = info.children
    cdef const char* name
    while el != NULL:
        if el.type == tree.XML_ENTITY_REF_NODE:
            raise _Odd()
        if el.type != tree.XML_ELEMENT_NODE:
            el = el.next
            continue
        if not is_cap(el):
            raise _Odd()
        name = <const char*>el.name
        if strcmp(name, "area") == 0:
            areas.append(_area(el))
        elif strcmp(name, "parameter") == 0:
            parameters.append(make(Parameter, pair(el)))
        elif strcmp(name, "category") == 0:
            categories.append(lookup(CATEGORY, text(el)))
        elif strcmp(name, "language") == 0:
            v[5] = text(el).strip()
        elif strcmp(name, "event") == 0:
            v[1] = text(el)
        elif strcmp(name, "urgency") == 0:
            v[2] = lookup(URGENCY, text(el))
        elif strcmp(name, "severity") == 0:
            v[3] = lookup(SEVERITY, text(el))
        elif strcmp(name, "certainty") == 0:
            v[4] = lookup(CERTAINTY, text(el))
        elif strcmp(name, "headline") == 0:
            v[13] = text(el)
        elif strcmp(name, "description") == 0:
            v[14] = text(el)
        elif strcmp(name, "instruction") == 0:
            v[15] = text(el)
        elif strcmp(name, "expires") == 0:
            v[11] = when(text(el))
        elif strcmp(name, "effective") == 0:
            v[9] = when(text(el))
        elif strcmp(name, "onset") == 0:
            v[10] = when(text(el))
        elif strcmp(name, "eventCode") == 0:
            event_codes.append(make(EventCode, pair(el)))
        elif strcmp(name, "responseType") == 0:
            responses.append(lookup(RESPONSE, text(el)))
        elif strcmp(name, "audience") == 0:
            v[7] = text(el)
        elif strcmp(name, "senderName") == 0:
            v[12] = text(el)
        elif strcmp(name, "web") == 0:
            v[16] = text(el).strip()
        elif strcmp(name, "contact") == 0:
            v[17] = text(el)
        elif strcmp(name, "resource") == 0:
            resources.append(_resource(el))
        else:
            raise _Odd()
        el = el.next
    v[0] = tuple(categories)
    v[6] = tuple(responses)
    v[8] = tuple(event_codes)
    v[18] = tuple(parameters)
    v[19] = tuple(resources)
    v[20] = tuple(areas)
    return make(Info, v)


cdef object _resource(tree.xmlNode* resource):
    r = [None] * 6
    cdef tree.xmlNode* el = resource.children
    cdef const char* name
    while el != NULL:
        if el.type == tree.XML_ENTITY_REF_NODE:
            raise _Odd()
        if el.type == tree.XML_ELEMENT_NODE:
            if not is_cap(el):
                raise _Odd()
            name = <const char*>el.name
            if strcmp(name, "resourceDesc") == 0:
                r[0] = text(el)
            elif strcmp(name, "mimeType") == 0:
                r[1] = text(el)
            elif strcmp(name, "size") == 0:
                r[2] = int(text(el).strip())
            elif strcmp(name, "uri") == 0:
                r[3] = text(el).strip()
            elif strcmp(name, "derefUri") == 0:
                r[4] = text(el)
            elif strcmp(name, "digest") == 0:
                r[5] = text(el)
            else:
                raise _Odd()
        el = el.next
    return make(Resource, r)


cdef object _area(tree.xmlNode* area):
    desc = ""
    polygons = []
    circles = []
    geocodes = []
    altitude = ceiling = None
    cdef tree.xmlNode* el = area.children
    cdef const char* name
    while el != NULL:
        if el.type == tree.XML_ENTITY_REF_NODE:
            raise _Odd()
        if el.type == tree.XML_ELEMENT_NODE:
            if not is_cap(el):
                raise _Odd()
            name = <const char*>el.name
            if strcmp(name, "geocode") == 0:
                geocodes.append(make(Geocode, pair(el)))
            elif strcmp(name, "polygon") == 0:
                polygons.append(make(Polygon, (text(el),)))
            elif strcmp(name, "areaDesc") == 0:
                desc = text(el)
            elif strcmp(name, "circle") == 0:
                circles.append(make(Circle, (text(el),)))
            elif strcmp(name, "altitude") == 0:
                altitude = Decimal(text(el).strip())
            elif strcmp(name, "ceiling") == 0:
                ceiling = Decimal(text(el).strip())
            else:
                raise _Odd()
        el = el.next
    return make(Area, (desc, tuple(polygons), tuple(circles), tuple(geocodes), altitude, ceiling))
