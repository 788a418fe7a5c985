"""The LTI protocol: OIDC login, LTI 1.3 and 1.1 launch validation, keys, deep linking."""
