"""A built-in identity service: the part of Keystone v3 that password auth needs.

Users, projects and role assignments come from a YAML file. Tokens are signed,
not stored (HMAC-SHA256 with the file's secret, like Keystone's Fernet tokens
carry ids and not roles): any worker process, or any server sharing the file,
validates any token, and roles are read from the file when a token is used.
``IdentityFile`` reads the file again when it changes (every worker on its own),
so removing a user or a role revokes their tokens within a second.

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
import logging
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

LOG = logging.getLogger(__name__)
DEFAULT_DOMAIN = "Default"
DEFAULT_EXPIRATION = 3600
DEFAULT_ITERATIONS = 200_000  # pbkdf2-sha256 rounds of hash_password() and of plain passwords hashed at load
RELOAD_INTERVAL = 1.0  # seconds between two looks at the identity file, per process
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


def hash_password(password: str, iterations: int | None = None) -> str:
    """A ``password_hash`` value for the file: ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (hex)."""
    return str(PasswordHash.of(password, iterations or DEFAULT_ITERATIONS))


def _derive(password: str, salt: bytes, iterations: int) -> bytes:
    # surrogatepass: a JSON body may hold lone surrogates; they cost the same derivation as any password.
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8", "surrogatepass"), salt, iterations)


@dataclass(frozen=True)
class PasswordHash:
    """A pbkdf2-sha256 hash: every password check, right or wrong, known user or not, costs one derivation."""

    iterations: int
    salt: bytes
    digest: bytes

    @classmethod
    def of(cls, password: str, iterations: int) -> PasswordHash:
        salt = secrets.token_bytes(16)
        return cls(iterations, salt, _derive(password, salt, iterations))

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """The file's form, ``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>``; ValueError otherwise."""
        scheme, iterations, salt, digest = text.split("$")
        if scheme != "pbkdf2_sha256" or not iterations.isdigit() or int(iterations) < 1:
            raise ValueError(text)
        return cls(int(iterations), bytes.fromhex(salt), bytes.fromhex(digest))

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(_derive(password, self.salt, self.iterations), self.digest)

    def __str__(self) -> str:
        return f"pbkdf2_sha256${self.iterations}${self.salt.hex()}${self.digest.hex()}"


def _decoy(iterations: int) -> PasswordHash:
    """What an unknown user's password is checked against, so that a wrong name costs what a wrong password does."""
    return PasswordHash.of(secrets.token_urlsafe(32), iterations)


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
    password_hash: PasswordHash = field(repr=False)  # `password:` users too: hashed at load
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
    decoy: PasswordHash = field(default_factory=lambda: _decoy(DEFAULT_ITERATIONS), compare=False, repr=False)

    # Loading -----------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, secret: str | None = None) -> Identity:
        """Read the file; ``secret`` is used when the file has none (see ``portsec serve``)."""
        try:
            text = Path(path).read_bytes()
        except OSError as err:
            raise IdentityConfigError(f"{path}: {err}") from None
        return cls.parse(text, str(path), secret)

    @classmethod
    def parse(cls, text: bytes | str, source: str, secret: str | None = None) -> Identity:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise IdentityConfigError(f"{source}: {err}") from None
        return cls.from_mapping(data or {}, secret)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], secret: str | None = None) -> Identity:
        if not isinstance(data, Mapping):
            raise IdentityConfigError("the identity file must be a mapping")
        key = data.get("secret", secret)
        if not isinstance(key, str) or not key:
            raise IdentityConfigError("'secret' must be a non-empty string")
        projects = _projects(data)
        entries = _entries(data, "users")
        # One cost for every check: plain passwords and the decoy of unknown users get the iterations of the
        # costliest hash in the file (a file that mixes costs lets timing tell those users apart, by their cost).
        iterations = max((h.iterations for h in map(_stored_hash, entries) if h), default=DEFAULT_ITERATIONS)
        users = {user.id: user for user in (_user(entry, projects, iterations) for entry in entries)}
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
            decoy=_decoy(iterations),
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
        # The derivation runs whoever is named, so an unknown name answers as slowly as a wrong password.
        password_matches = (user.password_hash if user is not None else self.decoy).matches(password)
        if user is None or not password_matches:
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
            "a": _b64encode(secrets.token_bytes(12)),
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

    def _mac(self, data: str) -> bytes:
        return hmac.new(self.secret, data.encode(), hashlib.sha256).digest()

    def _sign(self, payload: Mapping[str, Any]) -> str:
        data = _b64encode(json.dumps(payload, separators=(",", ":")).encode())
        return f"{data}.{_b64encode(self._mac(data))}"

    def _signed_payload(self, token: str) -> Any:
        """The payload of a token signed here and spelled exactly as it was issued, else None."""
        data, dot, mac = token.partition(".")
        try:
            raw, signature = _b64decode(data), _b64decode(mac)
        except ValueError:
            return None
        if not dot or not hmac.compare_digest(signature, self._mac(data)):
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def validate(self, token: str) -> Grant:
        """The grant of a token whose signature holds, that has not expired, whose user still has the project."""
        payload = self._signed_payload(token)
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


_UNPADDED_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    """Strict: one spelling per value (no padding, no skipped characters, no stray low bits), else ValueError."""
    if not _UNPADDED_BASE64URL.fullmatch(text):
        raise ValueError("not unpadded base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(raw) != text:
        raise ValueError("not the canonical spelling")
    return raw


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _member(body: Any, key: str) -> Mapping[str, Any]:
    value = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(value, Mapping):
        raise BadAuthRequest(f"'{key}' is a required object")
    return value


def _projects(data: Mapping[str, Any]) -> dict[str, Project]:
    projects: dict[str, Project] = {}
    for entry in _entries(data, "projects"):
        name = _text(entry, "name")
        domain = _text(entry, "domain", DEFAULT_DOMAIN)
        project = Project(id=_text(entry, "id", derived_id("project", domain, name)), name=name, domain=domain)
        projects[project.id] = project
    return projects


def _stored_hash(entry: Mapping[str, Any]) -> PasswordHash | None:
    """A user's ``password_hash``, or None for a ``password:`` user."""
    name, hashed = entry.get("name"), entry.get("password_hash")
    if hashed is None and isinstance(entry.get("password"), str):
        return None
    if not isinstance(hashed, str):
        raise IdentityConfigError(f"user {name!r} needs a 'password' or 'password_hash' string")
    try:
        return PasswordHash.parse(hashed)
    except ValueError:
        raise IdentityConfigError(
            f"user {name!r}: 'password_hash' must be pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>"
        ) from None


def _user(entry: Mapping[str, Any], projects: Mapping[str, Project], iterations: int) -> User:
    name = _text(entry, "name")
    domain = _text(entry, "domain", DEFAULT_DOMAIN)
    return User(
        id=_text(entry, "id", derived_id("user", domain, name)),
        name=name,
        domain=domain,
        password_hash=_stored_hash(entry) or PasswordHash.of(entry["password"], iterations),
        roles=_roles(name, entry.get("roles") or {}, projects),
    )


def _roles(user: str, assignments: Any, projects: Mapping[str, Project]) -> dict[str, tuple[str, ...]]:
    """Project id -> roles, implied ones included, from the file's ``{project name or id: [role, ...]}``."""
    if not isinstance(assignments, Mapping):
        raise IdentityConfigError(f"user {user!r}: 'roles' maps project names to lists of roles")
    roles: dict[str, tuple[str, ...]] = {}
    for project_name, names in assignments.items():
        found = next((p for p in projects.values() if (p.domain, p.name) == (DEFAULT_DOMAIN, str(project_name))), None)
        found = found or next((p for p in projects.values() if project_name in (p.name, p.id)), None)
        if found is None:
            raise IdentityConfigError(f"user {user!r}: no project {project_name!r}")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(r, str) for r in names):
            raise IdentityConfigError(f"user {user!r}: roles in {project_name!r} must be a list of names")
        roles[found.id] = _expand(r.lower() for r in names)
    return roles


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


def from_environment() -> IdentityFile | None:
    """The identity of a `portsec serve` worker, or None for noauth."""
    path = os.environ.get(ENV_CONFIG)
    return IdentityFile(path, os.environ.get(ENV_SECRET)) if path else None


@dataclass(frozen=True)
class _FileState:
    """What stat says of the file: any edit, in place or by rename, changes one of these."""

    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def _file_state(path: Path) -> _FileState | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _FileState(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# File times are coarse (a clock tick): an edit of the same size just after a look can leave stat unchanged,
# so a file changed this recently is compared by content as well.
_RECENT_NS = 2_000_000_000


class IdentityFile:
    """The identity file of one process, read again when it changes: what the README promises.

    At most one stat per RELOAD_INTERVAL; a changed file is read, and loaded if its
    content changed. An invalid file (or none) keeps the previous identity and logs
    one error per bad version. ``secret`` is the fallback of a file without one:
    `portsec serve` gives every worker the same, so reloads keep tokens valid.
    """

    def __init__(self, path: str | Path, secret: str | None = None, monotonic: Any = time.monotonic) -> None:
        self.path = Path(path)
        self.secret = secret
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._state = _file_state(self.path)  # before the read: an edit during it is seen at the next look
        content = self._read()
        self._digest = hashlib.sha256(content).digest()
        self._identity = Identity.parse(content, str(self.path), secret)
        self._next_look = monotonic() + RELOAD_INTERVAL

    def current(self) -> Identity:
        if self._monotonic() >= self._next_look:
            with self._lock:  # one look per interval, however many requests are waiting
                if self._monotonic() >= self._next_look:
                    self._look()
                    self._next_look = self._monotonic() + RELOAD_INTERVAL
        return self._identity

    def _read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as err:
            raise IdentityConfigError(f"{self.path}: {err}") from None

    def _look(self) -> None:
        state = _file_state(self.path)
        recent = state is not None and time.time_ns() - state.mtime_ns < _RECENT_NS
        if state == self._state and not recent:
            return
        self._state = state
        try:
            content = self._read()
            digest = hashlib.sha256(content).digest()
            if digest == self._digest:
                return
            self._digest = digest  # a bad version is reported once, not at every look
            self._identity = Identity.parse(content, str(self.path), self.secret)
        except IdentityConfigError as err:
            LOG.error("identity file %s not reloaded, the previous users and roles stay in force: %s", self.path, err)
