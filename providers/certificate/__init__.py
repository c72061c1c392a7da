"""The certificate layer: the TLS certificate of SIPS and WSS, checked or obtained by ACME."""
