"""A built-in identity service: the part of Keystone v3 that password auth needs.

Users, projects and role assignments come from a YAML file. Tokens are signed,
not stored (HMAC-SHA256 with the file's secret, like Keystone's Fernet tokens
carry ids and not roles): any worker process, or any server sharing the file,
validates any token, and roles are read from the file when a token is used.

The file::

    secret: a-long-random-string        # shared by every worker/server; default: random per start
    token_expiration: 3600              # seconds (Keystone's default)
    public_url: http://127.0.0.1:9696   # catalog URL; default: the URL the request came in on
    region: RegionOne
    projects:
      - name: demo                      # id: optional (default derived from domain and name)
        domain: Default                 # optional, Default
    users:
      - name: alice
        password: secret                # or password_hash: (hash_password() below)
        domain: Default
        roles:                          # project name -> roles in it
          demo: [member]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

DEFAULT_DOMAIN = "Default"
DEFAULT_EXPIRATION = 3600
# Keystone's role implication: admin > manager > member > reader.
IMPLIED_ROLES = {"admin": ("manager", "member", "reader"), "manager": ("member", "reader"), "member": ("reader",)}
_NAMESPACE = uuid.UUID("6f0c3a5e-51d4-4c58-9a2e-5b1f1d1a7c00")


class IdentityConfigError(ValueError):
    """The identity file is missing something or has a wrong type."""


class Unauthorized(Exception):
    """Bad credentials or token: Keystone's 401."""


class BadAuthRequest(Exception):
    """A malformed auth body: Keystone's 400."""


def derived_id(kind: str, *names: str) -> str:
    """Stable ids for names in the file, the same in every worker and on every start."""
    return uuid.uuid5(_NAMESPACE, "/".join((kind, *names))).hex


def domain_id(name: str) -> str:
    return "default" if name == DEFAULT_DOMAIN else derived_id("domain", name)


def hash_password(password: str, iterations: int = 200_000) -> str:
    """A ``password_hash`` value for the file: ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (hex)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def _password_matches(given: str, plain: str | None, hashed: str | None) -> bool:
    if hashed is not None:
        try:
            scheme, iterations, salt, digest = hashed.split("$")
            if scheme != "pbkdf2_sha256":
                return False
            computed = hashlib.pbkdf2_hmac("sha256", given.encode(), bytes.fromhex(salt), int(iterations))
        except ValueError:
            return False
        return hmac.compare_digest(computed.hex(), digest)
    return plain is not None and hmac.compare_digest(given.encode(), plain.encode())


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    domain: str

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "domain": _domain(self.domain), "is_domain": False}


@dataclass(frozen=True)
class User:
    id: str
    name: str
    domain: str
    password: str | None
    password_hash: str | None
    roles: Mapping[str, tuple[str, ...]]  # project id -> role names, implied ones included

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "domain": _domain(self.domain), "password_expires_at": None}


def _domain(name: str) -> dict[str, str]:
    return {"id": domain_id(name), "name": name}


def _expand(roles: Iterable[str]) -> tuple[str, ...]:
    found: list[str] = []
    for role in roles:
        for name in (role, *IMPLIED_ROLES.get(role, ())):
            if name not in found:
                found.append(name)
    return tuple(found)


@dataclass(frozen=True)
class Grant:
    """What a valid token stands for: who, in which project, with which roles."""

    user: User
    project: Project
    roles: tuple[str, ...]
    issued_at: float
    expires_at: float
    audit_id: str
    methods: tuple[str, ...] = ("password",)


@dataclass(frozen=True)
class Identity:
    secret: bytes
    projects: Mapping[str, Project]  # by id
    users: Mapping[str, User]  # by id
    expiration: int = DEFAULT_EXPIRATION
    public_url: str | None = None
    region: str = "RegionOne"
    clock: Any = field(default=time.time, compare=False)

    # Loading -----------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, secret: str | None = None) -> Identity:
        """Read the file; ``secret`` is used when the file has none (see ``portsec serve``)."""
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise IdentityConfigError(f"{path}: {err}") from None
        return cls.from_mapping(data or {}, secret)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], secret: str | None = None) -> Identity:
        if not isinstance(data, Mapping):
            raise IdentityConfigError("the identity file must be a mapping")
        key = data.get("secret", secret)
        if not isinstance(key, str) or not key:
            raise IdentityConfigError("'secret' must be a non-empty string")
        projects: dict[str, Project] = {}
        by_name: dict[tuple[str, str], Project] = {}
        for entry in _entries(data, "projects"):
            name = _text(entry, "name")
            domain = _text(entry, "domain", DEFAULT_DOMAIN)
            project = Project(id=_text(entry, "id", derived_id("project", domain, name)), name=name, domain=domain)
            projects[project.id] = by_name[(domain, name)] = project
        users: dict[str, User] = {}
        for entry in _entries(data, "users"):
            name = _text(entry, "name")
            domain = _text(entry, "domain", DEFAULT_DOMAIN)
            plain, hashed = entry.get("password"), entry.get("password_hash")
            if not isinstance(plain, str) and not isinstance(hashed, str):
                raise IdentityConfigError(f"user {name!r} needs a 'password' or 'password_hash' string")
            roles: dict[str, tuple[str, ...]] = {}
            assignments = entry.get("roles") or {}
            if not isinstance(assignments, Mapping):
                raise IdentityConfigError(f"user {name!r}: 'roles' maps project names to lists of roles")
            for project_name, names in assignments.items():
                found = by_name.get((DEFAULT_DOMAIN, str(project_name))) or next(
                    (p for p in projects.values() if p.name == project_name or p.id == project_name), None
                )
                if found is None:
                    raise IdentityConfigError(f"user {name!r}: no project {project_name!r}")
                if isinstance(names, str):
                    names = [names]
                if not isinstance(names, list) or not all(isinstance(r, str) for r in names):
                    raise IdentityConfigError(f"user {name!r}: roles in {project_name!r} must be a list of names")
                roles[found.id] = _expand(r.lower() for r in names)
            user = User(
                id=_text(entry, "id", derived_id("user", domain, name)),
                name=name,
                domain=domain,
                password=plain if isinstance(plain, str) else None,
                password_hash=hashed if isinstance(hashed, str) else None,
                roles=roles,
            )
            users[user.id] = user
        expiration = data.get("token_expiration", DEFAULT_EXPIRATION)
        if not isinstance(expiration, int) or expiration <= 0:
            raise IdentityConfigError("'token_expiration' must be a positive number of seconds")
        public_url = data.get("public_url")
        if public_url is not None and not isinstance(public_url, str):
            raise IdentityConfigError("'public_url' must be a URL")
        return cls(
            secret=key.encode(),
            projects=projects,
            users=users,
            expiration=expiration,
            public_url=public_url.rstrip("/") if public_url else None,
            region=str(data.get("region", "RegionOne")),
        )

    # Password auth -------------------------------------------------------------

    def authenticate(self, body: Any) -> tuple[str, Grant]:
        """``POST /v3/auth/tokens``: (token, grant) for a password auth body scoped to a project."""
        auth = _member(body, "auth")
        identity = _member(auth, "identity")
        methods = identity.get("methods")
        if not isinstance(methods, list) or methods != ["password"]:
            raise BadAuthRequest("only the 'password' method is supported")
        credentials = _member(_member(identity, "password"), "user")
        password = credentials.get("password")
        if not isinstance(password, str):
            raise BadAuthRequest("'password' must be a string")
        user = self._find(self.users.values(), credentials, "user")
        if user is None or not _password_matches(password, user.password, user.password_hash):
            raise Unauthorized("The request you have made requires authentication.")
        scope = auth.get("scope")
        if not isinstance(scope, Mapping) or not isinstance(scope.get("project"), Mapping):
            raise BadAuthRequest("portsec issues project-scoped tokens only: give auth.scope.project")
        project = self._find(self.projects.values(), scope["project"], "project")
        if project is None or project.id not in user.roles:
            raise Unauthorized("The request you have made requires authentication.")
        now = self.clock()
        payload = {
            "u": user.id,
            "p": project.id,
            "iat": int(now),
            "exp": int(now) + self.expiration,
            "a": base64.urlsafe_b64encode(secrets.token_bytes(12)).decode().rstrip("="),
        }
        token = self._sign(payload)
        return token, self.validate(token)

    @staticmethod
    def _find(candidates: Iterable[Any], ref: Any, kind: str) -> Any:
        if not isinstance(ref, Mapping):
            raise BadAuthRequest(f"'{kind}' must be an object")
        if "id" in ref:
            return next((c for c in candidates if c.id == ref["id"]), None)
        name, domain = ref.get("name"), ref.get("domain")
        if not isinstance(name, str) or not isinstance(domain, Mapping):
            raise BadAuthRequest(f"'{kind}' needs an id, or a name and a domain")
        return next(
            (
                c
                for c in candidates
                if c.name == name and (domain.get("name") == c.domain or domain.get("id") == domain_id(c.domain))
            ),
            None,
        )

    # Tokens ------------------------------------------------------------------

    def _sign(self, payload: Mapping[str, Any]) -> str:
        data = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        mac = hmac.new(self.secret, data.encode(), hashlib.sha256).digest()
        return f"{data}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def validate(self, token: str) -> Grant:
        """The grant of a token whose signature holds, that has not expired, whose user still has the project."""
        data, _, mac = token.partition(".")
        expected = hmac.new(self.secret, data.encode(), hashlib.sha256).digest()
        try:
            signature = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
            valid = hmac.compare_digest(signature, expected)
            payload = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))) if valid else None
        except (ValueError, TypeError):
            payload = None
        if not isinstance(payload, dict) or payload.get("exp", 0) <= self.clock():
            raise Unauthorized("The request you have made requires authentication.")
        user = self.users.get(payload.get("u", ""))
        project = self.projects.get(payload.get("p", ""))
        if user is None or project is None or project.id not in user.roles:
            raise Unauthorized("The request you have made requires authentication.")
        return Grant(
            user=user,
            project=project,
            roles=user.roles[project.id],
            issued_at=float(payload["iat"]),
            expires_at=float(payload["exp"]),
            audit_id=str(payload.get("a", "")),
        )

    def token_body(self, grant: Grant, base_url: str) -> dict[str, Any]:
        """Keystone's token body, with a catalog whose network endpoint is this server."""
        url = self.public_url or base_url.rstrip("/")

        def service(kind: str, name: str, href: str) -> dict[str, Any]:
            return {
                "id": derived_id("service", kind),
                "type": kind,
                "name": name,
                "endpoints": [
                    {
                        "id": derived_id("endpoint", kind, interface),
                        "interface": interface,
                        "region": self.region,
                        "region_id": self.region,
                        "url": href,
                    }
                    for interface in ("public", "internal", "admin")
                ],
            }

        return {
            "token": {
                "methods": list(grant.methods),
                "user": grant.user.body(),
                "project": grant.project.body(),
                "roles": [{"id": derived_id("role", r), "name": r} for r in grant.roles],
                "audit_ids": [grant.audit_id],
                "issued_at": _iso(grant.issued_at),
                "expires_at": _iso(grant.expires_at),
                "is_domain": False,
                "catalog": [service("network", "neutron", url), service("identity", "keystone", url + "/v3")],
            }
        }


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _member(body: Any, key: str) -> Mapping[str, Any]:
    value = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(value, Mapping):
        raise BadAuthRequest(f"'{key}' is a required object")
    return value


def _entries(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    entries = data.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise IdentityConfigError(f"'{key}' must be a list of mappings")
    return entries


def _text(entry: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = entry.get(key, default)
    if not isinstance(value, str) or not value:
        where = f" (entry {entry.get('name')!r})" if isinstance(entry.get("name"), str) else ""
        raise IdentityConfigError(f"{key!r} must be a non-empty string{where}")
    return value


def error_body(status: int, title: str, message: str) -> dict[str, Any]:
    """Keystone's (and keystonemiddleware's) error body."""
    return {"error": {"code": status, "title": title, "message": message}}


ENV_CONFIG = "PORTSEC_IDENTITY_CONFIG"
ENV_SECRET = "PORTSEC_IDENTITY_SECRET"


def from_environment() -> Identity | None:
    """The identity of `portsec serve` workers, or None for noauth."""
    path = os.environ.get(ENV_CONFIG)
    return Identity.load(path, os.environ.get(ENV_SECRET)) if path else None
