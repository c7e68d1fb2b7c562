"""The Asterisk connector: the real PBX on one side, Kafka on the other.

Modules, from the wire inwards:

* :mod:`~connectors.asterisk.ari` — ARI REST client and the reconnecting event websocket.
* :mod:`~connectors.asterisk.ami` — minimal AMI client; AMI ``Cdr`` events → :class:`Cdr`.
* :mod:`~connectors.asterisk.rtp` — RTP parsing, G.711 decoding, chunking into
  :class:`AudioChunk` records, UDP receivers for ``externalMedia``.
* :mod:`~connectors.asterisk.callflow` — the Stasis application: one ``CallSession`` per call.
* :mod:`~connectors.asterisk.commands` — applies ``pbx.commands`` once per ``command_id``.
* :mod:`~connectors.asterisk.service` — wires it all to Kafka (``run_connector``).

Everything that decides is written against small Protocols (:mod:`.protocols`) so unit tests
drive it with fakes; only ``ari``, ``ami``, ``rtp`` (receiver) and ``service`` touch sockets.
"""
