"""JSON shapes of the UAPI resources: they live with the data (`faxline.store.views`),
because webhook events carry the fax as GET returns it and are written by the store."""

from __future__ import annotations

from faxline.store.views import attempt_view, delivery_view, fax_view

__all__ = ["attempt_view", "delivery_view", "fax_view"]
