"""Signed, expiring download links."""

from __future__ import annotations

import os
import stat

import pytest

from aiusage.exports.signing import KEY_FILE_NAME, SignatureExpired, SignatureInvalid, UrlSigner


def test_signature_binds_job_user_and_expiry(tmp_path):
    signer = UrlSigner.load_or_create(tmp_path)
    sig = signer.sign("job1", "alice", 1000)
    signer.verify("job1", "alice", 1000, sig, now=999.0)
    for job, user, exp in (("job2", "alice", 1000), ("job1", "bob", 1000), ("job1", "alice", 5000)):
        with pytest.raises(SignatureInvalid):
            signer.verify(job, user, exp, sig, now=999.0)
    with pytest.raises(SignatureExpired):
        signer.verify("job1", "alice", 1000, sig, now=1000.5)


def test_the_key_is_private_persistent_and_shared_by_processes_on_the_data_dir(tmp_path):
    first = UrlSigner.load_or_create(tmp_path)
    second = UrlSigner.load_or_create(tmp_path)
    assert first.sign("j", "u", 1) == second.sign("j", "u", 1)
    mode = stat.S_IMODE(os.stat(tmp_path / KEY_FILE_NAME).st_mode)
    assert mode == 0o600
    other = UrlSigner.load_or_create(tmp_path / "elsewhere")
    assert other.sign("j", "u", 1) != first.sign("j", "u", 1)
