"""Who may use the app: anyone on this machine by default, only token holders otherwise.

`configurable-agents app` listens on 127.0.0.1 unless `--host` says otherwise, and listening
anywhere else requires a token (docs/cli.md). Streamlit has no authentication of its own, so
every script run checks the token before a page draws anything: a browser session shows it
once (the `?token=` of the link printed at start) and keeps it for its lifetime.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket

TOKEN_VARIABLE = "CONFIGURABLE_AGENTS_APP_TOKEN"
TOKEN_PARAM = "token"
_GRANTED = "access_granted"


def is_loopback(host: str) -> bool:
    """Whether `host` names only this machine's loopback interface."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def require_token() -> None:
    """Stops the script, showing how to get in, unless no token is set or this session has
    shown the right one."""
    expected = os.environ.get(TOKEN_VARIABLE)
    if not expected:
        return
    import streamlit as st  # here, not above: the CLI's launcher imports this module

    if not st.session_state.get(_GRANTED):
        given = st.query_params.get(TOKEN_PARAM, "")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            st.error(
                "This app needs its access token: open the link `configurable-agents app` "
                "printed when it started (it ends in `?token=...`), or ask whoever runs it."
            )
            st.stop()
        st.session_state[_GRANTED] = True
    # Kept in the address bar, so that a reload (a new session) still gets in.
    if st.query_params.get(TOKEN_PARAM) != expected:
        st.query_params[TOKEN_PARAM] = expected
