from lxml import etree

from hub.cap.model import Alert

def build(root: etree._Element) -> Alert | None: ...
