"""big-sales, in Python: marks sales whose total reaches `threshold_minor` with `bigsale = true`."""
import json

import wit_world
from wit_world.imports import config, errors, types
from componentize_py_types import Err


class WitWorld(wit_world.WitWorld):
    def handle(self, event: types.Event) -> list[types.Event]:
        settings = json.loads(config.get())
        threshold = settings.get("threshold_minor")
        if not isinstance(threshold, int):
            raise Err(errors.PluginError_InvalidConfig("threshold_minor must be an integer (minor units)"))
        payload = event.payload
        if isinstance(payload, types.Payload_Sale) and payload.value.totals.total.amount_minor >= threshold:
            event.extensions.append(("bigsale", "true"))
        return [event]
