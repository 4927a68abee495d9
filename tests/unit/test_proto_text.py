"""SIG-6b without protoc: the .proto text of a ServiceSpec compiles at run time into
descriptors equal to protoc's (actr/proto_text.py, actr/descriptors.py)."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.descriptor_pb2 import DescriptorProto, FileDescriptorProto

from actr.descriptors import SpecError, SpecTypes
from actr.identity import parse_type
from actr.protocol import actr_pb2, signaling_pb2, webrtc_pb2
from actr.service_spec import actor_service_spec, render_file
from examples import echo_pb2, orders_pb2
from examples.echo import Echo
from examples.orders import Orders


def _normalized(msg: DescriptorProto) -> DescriptorProto:
    """What protoc writes that a parser of the text has no reason to: json_name."""
    out = DescriptorProto()
    out.CopyFrom(msg)
    stack = [out]
    while stack:
        m = stack.pop()
        for f in m.field:
            f.ClearField("json_name")
        stack.extend(m.nested_type)
    return out


@pytest.mark.parametrize(
    "module", [actr_pb2, signaling_pb2, webrtc_pb2, echo_pb2, orders_pb2], ids=lambda m: m.__name__
)
def test_rendered_files_parse_back_to_protocs_descriptors(module: object) -> None:
    compiled: FileDescriptor = module.DESCRIPTOR  # type: ignore[attr-defined]
    files = [compiled, *compiled.dependencies]
    texts = []
    for f in files:
        proto = FileDescriptorProto()
        f.CopyToProto(proto)
        texts.append(render_file(proto))
    types = SpecTypes.from_texts(texts)
    for name, desc in compiled.message_types_by_name.items():
        want, got = DescriptorProto(), DescriptorProto()
        desc.CopyToProto(want)
        types.message(desc.full_name).CopyToProto(got)
        assert _normalized(got) == _normalized(want), name
    for name, enum in compiled.enum_types_by_name.items():
        assert [
            (v.name, v.number) for v in types.pool.FindEnumTypeByName(enum.full_name).values
        ] == [(v.name, v.number) for v in enum.values], name


def test_sig6b_echo_spec_names_its_route_with_types_from_the_actors_handlers() -> None:
    spec = actor_service_spec(Echo, parse_type("acme:echo:1.0"))
    assert spec is not None
    types = SpecTypes.from_spec(spec)
    route = types.routes["echo.v1.Echo.Say"]
    assert (route.request.full_name, route.response.full_name) == (
        "echo.v1.SayRequest",
        "echo.v1.SayReply",
    )


def test_a_service_declared_in_the_proto_is_not_declared_twice() -> None:
    spec = actor_service_spec(Orders, parse_type("acme:orders:1.0"))
    assert spec is not None
    (package,) = spec.protobufs
    assert package.content.count("service Orders") == 1
    assert list(SpecTypes.from_spec(spec).routes) == ["orders.v1.Orders.Place"]


def test_json_in_and_out_with_nested_enums_repeated_maps_and_bytes() -> None:
    spec = actor_service_spec(Orders, parse_type("acme:orders:1.0"))
    assert spec is not None
    types = SpecTypes.from_spec(spec)
    route = types.routes["orders.v1.Orders.Place"]
    text = (
        '{"customer": "ada", "items": [{"sku": "tea", "quantity": 2, "attachment": "AAE="}],'
        ' "priority": "PRIORITY_HIGH", "ship_to": {"city": "Oslo"}, "notes": {"k": "v"},'
        ' "tags": ["x"]}'
    )
    data = types.encode_json(route.request, text)
    compiled = orders_pb2.PlaceOrder.FromString(data)
    assert compiled.items[0].attachment == b"\x00\x01"
    assert compiled.priority == orders_pb2.PRIORITY_HIGH
    assert dict(compiled.notes) == {"k": "v"} and compiled.ship_to.city == "Oslo"
    answer = orders_pb2.OrderPlaced(order_id="o", status=orders_pb2.OrderPlaced.STATUS_HELD)
    assert types.decode_json(route.response, answer.SerializeToString()) == (
        '{"order_id": "o", "status": "STATUS_HELD"}'
    )
    with pytest.raises(SpecError, match='no field named "colour"'):
        types.encode_json(route.request, '{"colour": "red"}')
    with pytest.raises(SpecError, match="not JSON"):
        types.encode_json(route.request, '{"customer": ')
    with pytest.raises(SpecError, match="Invalid enum value URGENT"):
        types.encode_json(route.request, '{"priority": "URGENT"}')
    with pytest.raises(SpecError, match="must be a JSON object"):
        types.encode_json(route.request, "[1]")


HAND_WRITTEN = """
// What another runtime (actr's Rust nodes) may register: relative names, comments,
// options and reserved ranges, proto3 optional, well-known types, streaming rpcs.
syntax = "proto3";
package shop.v2;
import "google/protobuf/timestamp.proto";
option java_package = "com.example.shop";

/* A block comment { with braces } */
message Cart {
  option deprecated = true;
  reserved 9, 10 to 12;
  reserved "old";
  message Line { string sku = 1; int64 cents = 2 [json_name = "priceCents"]; }
  repeated Line lines = 1;
  optional string coupon = 2;
  oneof payment { string card = 3; bytes token = 4; }
  Kind kind = 5;
  google.protobuf.Timestamp at = 6;
  map<string, Line> saved = 7;
  enum Kind { option allow_alias = true; KIND_UNSPECIFIED = 0; CART = 1; BASKET = 1; }
}
message Receipt {
  shop.v2.Cart.Line first = 1; Cart.Kind kind = 2; sint32 delta = 3 [deprecated = true];
}
service Till {
  option (my.opt) = { a: 1 };
  rpc Pay (Cart) returns (Receipt) { option idempotency_level = NO_SIDE_EFFECTS; }
  rpc Watch (stream Cart) returns (stream .shop.v2.Receipt);
}
"""


def test_hand_written_proto3_with_relative_names_options_and_well_known_types() -> None:
    types = SpecTypes.from_texts([HAND_WRITTEN], name="shop")
    assert set(types.routes) == {"shop.v2.Till.Pay", "shop.v2.Till.Watch"}
    watch = types.routes["shop.v2.Till.Watch"]
    assert watch.client_streaming and watch.server_streaming
    cart = types.message("shop.v2.Cart")
    assert cart.fields_by_name["coupon"].has_presence
    assert cart.fields_by_name["kind"].enum_type.full_name == "shop.v2.Cart.Kind"
    assert cart.fields_by_name["saved"].message_type.GetOptions().map_entry
    receipt = types.message("shop.v2.Receipt")
    assert receipt.fields_by_name["first"].message_type.full_name == "shop.v2.Cart.Line"
    data = types.encode_json(
        cart,
        '{"lines": [{"sku": "a", "priceCents": "150"}], "coupon": "", "card": "visa",'
        ' "at": "2026-01-02T03:04:05Z", "saved": {"x": {"sku": "b"}}}',
    )
    back = types.decode_json(cart, data)
    assert '"coupon": ""' in back and '"at": "2026-01-02T03:04:05Z"' in back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('syntax = "proto3";\nmessage A {\n  string x = ;\n}', "line 3: expected a number"),
        ('syntax = "proto3";\nmessage A { Missing m = 1; }', "'Missing' .* is not defined"),
        ('syntax = "proto2";\nmessage A { optional group G = 1 {} }', "groups are not supported"),
        ('edition = "2023";', "editions are not supported"),
        ('syntax = "proto3";\nmessage A { string x = 1; }\n}', "expected a top-level"),
        ('syntax = "proto3";\nmessage A { string x = 1;', "unexpected end"),
    ],
)
def test_a_spec_that_does_not_parse_says_where(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        SpecTypes.from_texts([text], name="bad")
