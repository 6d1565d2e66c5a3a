"""Privacy and security: keys, encryption at rest, anonymisation, re-identification risk,
access policies with an audit log, and differentially private synthesis.

Names load lazily on first use (``datakiln.privacy.load_key`` imports only the keys module).
Each helper module adds its own lines to ``_LAZY`` (name -> module).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    # keys (key files, key ids, HKDF derivation, passphrases)
    "Key": "datakiln.privacy.keys",
    "load_key": "datakiln.privacy.keys",
    "resolve_key": "datakiln.privacy.keys",
    "new_key_file": "datakiln.privacy.keys",
    "derive": "datakiln.privacy.keys",
    "key_id": "datakiln.privacy.keys",
    "key_from_passphrase": "datakiln.privacy.keys",
    # crypto (streaming AES-256-GCM envelope)
    "encrypt_file": "datakiln.privacy.crypto",
    "decrypt_file": "datakiln.privacy.crypto",
    "rekey_file": "datakiln.privacy.crypto",
    "read_header": "datakiln.privacy.crypto",
    "is_encrypted": "datakiln.privacy.crypto",
    # Parquet modular encryption
    "EncryptionConfig": "datakiln.privacy.parquet_crypto",
    "DecryptionConfig": "datakiln.privacy.parquet_crypto",
    # re-identification risk and the k-anonymity generalisation search
    "risk": "datakiln.privacy.risk",
    "RiskReport": "datakiln.privacy.risk",
    "generalize_to_k": "datakiln.privacy.recoding",
    "GeneralizationReport": "datakiln.privacy.recoding",
    # anonymisation operators and anonymize()
    "anonymize": "datakiln.privacy.anonymize",
    "AnonymizationReport": "datakiln.privacy.anonymize",
    "pseudonymize": "datakiln.privacy.pseudonym",
    "Pseudonymize": "datakiln.privacy.pseudonym",
    "Mask": "datakiln.privacy.operators",
    "Redact": "datakiln.privacy.operators",
    "Suppress": "datakiln.privacy.operators",
    "Noise": "datakiln.privacy.operators",
    "make_operator": "datakiln.privacy.operators",
    "Generalize": "datakiln.privacy.generalize",
    "Scrub": "datakiln.privacy.scrub",
    "find_pii": "datakiln.privacy.scrub",
    # access policies (read-time enforcement) and the tamper-evident audit log
    "Policy": "datakiln.privacy.policy",
    "RolePolicy": "datakiln.privacy.policy",
    "load_policy": "datakiln.privacy.policy",
    "apply_policy": "datakiln.privacy.policy",
    "parse_filter": "datakiln.privacy.rowfilter",
    "AuditLog": "datakiln.privacy.audit",
    "AuditVerification": "datakiln.privacy.audit",
    "verify_log": "datakiln.privacy.audit",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'datakiln.privacy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
