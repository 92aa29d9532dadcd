"""The explicit registries: a new vendor or CRM is one import and one line here. No discovery."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.inbound import callsv1, graph8, livekit, qualifier, voiceapi, voicecalls
from adapters.outbound import hubspot, pipedrive, salesforce
from gateway.connectors import ConnectorSpec
from gateway.inbound import InboundAdapter

INBOUND: Mapping[str, InboundAdapter] = {
    graph8.NAME: graph8.ADAPTER,
    voiceapi.NAME: voiceapi.ADAPTER,
    callsv1.NAME: callsv1.ADAPTER,
    qualifier.NAME: qualifier.ADAPTER,
    voicecalls.NAME: voicecalls.ADAPTER,
    livekit.NAME: livekit.ADAPTER,
}

OUTBOUND: Mapping[str, ConnectorSpec] = {
    hubspot.KIND: hubspot.SPEC,
    pipedrive.KIND: pipedrive.SPEC,
    salesforce.KIND: salesforce.SPEC,
}
