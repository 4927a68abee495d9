"""The orders actor: a second example, whose messages have nested messages, enums,
repeated fields, a map and bytes (proto/examples/orders.proto), for ``actr call``
with JSON and the browser console.

    actr call acme:orders:1.0 orders.v1.Orders.Place \\
        '{"customer": "ada", "items": [{"sku": "tea", "quantity": 2}]}'

An order without items is refused with INVALID_ARGUMENT; more than 100 of one item
is held (``STATUS_HELD``) rather than accepted.
"""

from __future__ import annotations

import hashlib

from actr import Actor, Context, rpc
from actr.errors import InvalidArgument
from examples.orders_pb2 import OrderPlaced, PlaceOrder

HOLD_ABOVE = 100


class Orders(Actor):
    actr_type = "acme:orders:1.0"

    def __init__(self) -> None:
        self.placed = 0

    @rpc("orders.v1.Orders.Place")
    async def place(self, req: PlaceOrder, ctx: Context) -> OrderPlaced:
        if not req.items:
            raise InvalidArgument("an order needs at least one item")
        self.placed += 1
        reply = OrderPlaced(
            order_id=f"{req.customer or 'anonymous'}-{self.placed}",
            status=OrderPlaced.STATUS_ACCEPTED,
            priority=req.priority,
            tags=req.tags,
            notes=req.notes,
        )
        if req.HasField("ship_to"):
            reply.ship_to.CopyFrom(req.ship_to)
        for item in req.items:
            line = reply.lines.add(sku=item.sku, quantity=item.quantity)
            if item.attachment:
                line.attachment_sha256 = hashlib.sha256(item.attachment).digest()
            reply.total_quantity += item.quantity
            if item.quantity > HOLD_ABOVE:
                reply.status = OrderPlaced.STATUS_HELD
        return reply
