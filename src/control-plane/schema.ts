// Versioned SQLite migrations of the control plane's database. Each entry runs once, in order, in
// its own transaction; schema_version records the highest applied. Append, never edit.

/** Migrations by version (index 0 is version 1). */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE projects (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL);
  CREATE TABLE signing_keys (
    key_id TEXT PRIMARY KEY,
    secret_key BLOB NOT NULL,
    public_key BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    active INTEGER NOT NULL
  );
  CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,             -- sha256 hex of the bootstrap token; the token is never stored
    project_id TEXT NOT NULL REFERENCES projects(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    consumed_at INTEGER,
    node_id TEXT
  );
  CREATE TABLE nodes (
    row INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so pair_psks rows cannot be inherited
    node_id TEXT NOT NULL UNIQUE,
    project_id TEXT NOT NULL REFERENCES projects(id),
    resource_handle TEXT NOT NULL,
    mode TEXT NOT NULL,
    public_key TEXT NOT NULL,
    key_version INTEGER NOT NULL DEFAULT 1,
    key_rotated_at INTEGER,
    rotation_id TEXT,
    mesh_ip TEXT NOT NULL,
    mesh_ip_num INTEGER NOT NULL UNIQUE,    -- the no-duplicates guarantee for mesh IPs
    nsk_hash BLOB NOT NULL,                 -- sha256 of the node secret key
    status TEXT NOT NULL,                   -- online | unreachable | offline
    registered_at INTEGER NOT NULL,
    last_heartbeat_at INTEGER NOT NULL,
    endpoint TEXT,
    nat_type TEXT,
    endpoint_reported_at INTEGER,
    binary_version TEXT,
    binary_checksum TEXT,
    capabilities TEXT,
    last_state_seq INTEGER NOT NULL DEFAULT 0,
    rotate_requested INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX nodes_project ON nodes(project_id);
  CREATE TABLE registrations (
    nonce TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,              -- sha256 of the request fields that define "the same registration"
    node_id TEXT NOT NULL,
    nsk BLOB,                               -- kept only until first authenticated use or expiry, for retries
    created_at INTEGER NOT NULL
  );
  CREATE TABLE pair_psks (
    a INTEGER NOT NULL,                     -- nodes.row, a < b
    b INTEGER NOT NULL,
    psk BLOB NOT NULL,
    PRIMARY KEY (a, b)
  ) WITHOUT ROWID;
  CREATE INDEX pair_psks_b ON pair_psks(b);
  CREATE TABLE policies (
    project_id TEXT PRIMARY KEY REFERENCES projects(id),
    revision INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    rules TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- the SSE id; never reused after pruning
    project_id TEXT NOT NULL,
    target_node TEXT,                       -- only this node, or NULL for the whole project
    exclude_node TEXT,                      -- everyone but this node (the event's subject)
    type TEXT NOT NULL,
    envelope TEXT NOT NULL,                 -- signed envelope JSON, sent as is
    created_at INTEGER NOT NULL
  );
  CREATE INDEX events_project ON events(project_id, seq);
  CREATE TABLE executions (
    execution_id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    action TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    exit_code INTEGER,
    output TEXT
  );
  CREATE INDEX executions_node ON executions(node_id);
  `,
  // 2: PSKs are derived from a master secret (meta.psk_master, made by the store from the CSPRNG)
  // and the pair's epoch; only rotated pairs have a row. pair_psks stays for pairs made under
  // version 1, whose stored keys remain in use until the pair is rotated.
  `
  CREATE TABLE pair_psk_epochs (
    a TEXT NOT NULL,                        -- node ids, a < b
    b TEXT NOT NULL,
    epoch INTEGER NOT NULL CHECK (epoch > 0),
    PRIMARY KEY (a, b)
  ) WITHOUT ROWID;
  CREATE INDEX pair_psk_epochs_b ON pair_psk_epochs(b);
  `,
  // 3: signing-key rotation. A retired key names its successor and verifies until
  // transition_expires (agents keep it that long; the server re-announces the rotation then).
  `
  ALTER TABLE signing_keys ADD COLUMN replaced_by TEXT;
  ALTER TABLE signing_keys ADD COLUMN transition_expires INTEGER;
  `,
  // 4: a WireGuard public key belongs to one node. Builds before this accepted a key another node
  // held; such rows are not deleted (the start must not fail, nor guess away a node) but marked:
  // of the nodes sharing a key, the one holding it longest keeps it, the others get key_conflict
  // = 1, stay out of every peer list and are logged at start until they rotate or are removed.
  `
  ALTER TABLE nodes ADD COLUMN key_conflict INTEGER NOT NULL DEFAULT 0;
  UPDATE nodes SET key_conflict = 1 WHERE EXISTS (
    SELECT 1 FROM nodes o WHERE o.public_key = nodes.public_key AND o.row <> nodes.row
      AND (COALESCE(o.key_rotated_at, o.registered_at), o.row) < (COALESCE(nodes.key_rotated_at, nodes.registered_at), nodes.row)
  );
  CREATE UNIQUE INDEX nodes_public_key ON nodes(public_key) WHERE key_conflict = 0;
  `,
  // 5: every authenticated request in a node's first 10 minutes clears its retry nsk by node_id,
  // and removal deletes by node_id: without an index each was a scan of every registration.
  `
  CREATE INDEX registrations_node ON registrations(node_id);
  `,
  // 6: a node's endpoint candidates (docs/nat.md "Endpoint candidates"): the JSON array
  // of its last report, NULL when it never reported any (older agents, upstream plexd).
  `
  ALTER TABLE nodes ADD COLUMN candidates TEXT;
  `,
  // 7: visibility and groups (issue 23, docs/policy.md "Visibility and groups"). Node labels (JSON
  // object, NULL = none) and the labels a token gives the node it registers; events about one
  // node's peer data (`peers_of`) go only to the nodes that see it; a project's membership
  // generation moves with every change of its node set or labels, so a cached visibility model
  // (also in another process) knows when to rebuild. psk_generation: bumped when a policy change
  // too wide to diff pair by pair may have cut pairs off; it enters every pair's PSK (psk.ts).
  `
  ALTER TABLE nodes ADD COLUMN labels TEXT;
  ALTER TABLE tokens ADD COLUMN labels TEXT;
  ALTER TABLE events ADD COLUMN peers_of TEXT;
  ALTER TABLE projects ADD COLUMN membership_gen INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE projects ADD COLUMN psk_generation INTEGER NOT NULL DEFAULT 0;
  `,
  // 8: the bridge access side (issue 15, docs/control-plane.md "User access and site-to-site").
  // A bridge's access and site-to-site public keys (from its heartbeats; the private keys never
  // leave it), its NAT switch and access subnets (JSON array, NULL = none). Users get an address
  // of the access range (meta access_cidr; UNIQUE address_num: never two holders), sites a listen
  // port per bridge (UNIQUE with the bridge) and a short tunnel id. PSKs are derived from the PSK
  // master and each row's random psk_salt (nothing secret is stored).
  `
  ALTER TABLE nodes ADD COLUMN access_public_key TEXT;
  ALTER TABLE nodes ADD COLUMN s2s_public_key TEXT;
  ALTER TABLE nodes ADD COLUMN enable_nat INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE nodes ADD COLUMN access_subnets TEXT;
  CREATE TABLE access_users (
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    bridge_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    address_num INTEGER NOT NULL UNIQUE,
    psk_salt BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, name)
  );
  CREATE UNIQUE INDEX access_users_key ON access_users(bridge_id, public_key);
  CREATE TABLE sites (
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    bridge_id TEXT NOT NULL,
    tunnel_id TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    subnets TEXT NOT NULL,
    listen_port INTEGER NOT NULL,
    psk_salt BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, name),
    UNIQUE (bridge_id, listen_port)
  );
  CREATE INDEX sites_project ON sites(project_id);
  `,
  // 9: public ingress (issue 16, docs/control-plane.md "Ingress"): rules per bridge node, hostname
  // unique per project (stored lowercase). A terminate rule's private key is sealed like the other
  // secrets (secrets.ts, bound to its rule id); its certificate is public. A rule goes with its
  // bridge or its target node: a later node could be given the target's mesh IP.
  `
  CREATE TABLE ingress_rules (
    rule_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    bridge_id TEXT NOT NULL,                -- nodes.node_id of a mode "bridge" node
    target_node TEXT NOT NULL,              -- nodes.node_id holding the target's mesh IP when added
    hostname TEXT NOT NULL,                 -- lowercase RFC 1123 name, the TLS SNI
    listen_port INTEGER NOT NULL,
    target_addr TEXT NOT NULL,              -- "MESH_IP:PORT"
    mode TEXT NOT NULL,                     -- passthrough | terminate | acme
    cert_pem TEXT,                          -- terminate only
    key_pem BLOB,                           -- terminate only, sealed
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, hostname)
  );
  CREATE INDEX ingress_rules_bridge ON ingress_rules(bridge_id);
  CREATE INDEX ingress_rules_target ON ingress_rules(target_node);
  CREATE TRIGGER ingress_rules_node_removed AFTER DELETE ON nodes BEGIN
    DELETE FROM ingress_rules WHERE bridge_id = OLD.node_id OR target_node = OLD.node_id;
  END;
  `,
  // 10: remote actions and hooks (issue 18, docs/operations.md "Remote actions"): an execution's
  // kind, deadline, error, output (inline bytes or an upload: declared size, one-time token, key,
  // SHA-256), cancel request and per-status timestamps; and the hook digests an operator approved
  // (node_id '' approves for every node of the project).
  `
  ALTER TABLE executions ADD COLUMN type TEXT NOT NULL DEFAULT 'builtin';
  ALTER TABLE executions ADD COLUMN checksum TEXT;            -- hooks: the approved "sha256:<hex>"
  ALTER TABLE executions ADD COLUMN expires_at INTEGER;
  ALTER TABLE executions ADD COLUMN error TEXT;
  ALTER TABLE executions ADD COLUMN output_data BLOB;         -- inline or uploaded bytes
  ALTER TABLE executions ADD COLUMN declared_output_bytes INTEGER;
  ALTER TABLE executions ADD COLUMN upload_token TEXT;        -- one-time, cleared on upload
  ALTER TABLE executions ADD COLUMN output_object_key TEXT;
  ALTER TABLE executions ADD COLUMN output_sha256 TEXT;
  ALTER TABLE executions ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE executions ADD COLUMN acked_at INTEGER;
  ALTER TABLE executions ADD COLUMN started_at INTEGER;
  ALTER TABLE executions ADD COLUMN finished_at INTEGER;
  CREATE TABLE hook_approvals (
    project_id TEXT NOT NULL,
    node_id TEXT NOT NULL,                  -- '' = every node of the project
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,                   -- 64 lowercase hex digits
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, node_id, name)
  );
  `,
  // 11: node state and secrets (issue 18, docs/operations.md "Node state and secrets"). Secrets
  // per node (owner = node id) or per project (owner = "project:ID"), every version kept, each
  // value sealed like the other secrets (secrets.ts, bound to owner, name and version); a node's
  // metadata, data and reports (bucket), values opaque strings. Both go with their node.
  `
  CREATE TABLE node_secrets (
    project_id TEXT NOT NULL REFERENCES projects(id),
    owner TEXT NOT NULL,                    -- node id, or "project:" || project id
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    value BLOB NOT NULL,                    -- sealed
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner, name, version)
  );
  CREATE TABLE node_state (
    node_id TEXT NOT NULL,
    bucket TEXT NOT NULL,                   -- metadata | data | reports
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    workload_tag TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, bucket, key)
  );
  CREATE TRIGGER node_state_node_removed AFTER DELETE ON nodes BEGIN
    DELETE FROM node_state WHERE node_id = OLD.node_id;
    DELETE FROM node_secrets WHERE owner = OLD.node_id;
  END;
  `,
  // 12: telemetry (issue 18, docs/operations.md "Telemetry"): the metric points, log lines and
  // audit entries nodes upload, one JSON record a row, trimmed per node and kind to a row cap and
  // a maximum age (telemetry.ts); batch ids seen in the last day, so a re-sent batch is stored once.
  `
  CREATE TABLE telemetry (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,                     -- metrics | logs | audit
    received_at INTEGER NOT NULL,           -- ms, control-plane clock
    ts TEXT NOT NULL,                       -- the record's own timestamp (RFC 3339)
    record TEXT NOT NULL                    -- the record as JSON
  );
  CREATE INDEX telemetry_node_kind ON telemetry(node_id, kind, id);
  CREATE INDEX telemetry_age ON telemetry(kind, received_at);
  CREATE TABLE telemetry_batches (
    node_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, kind, batch_id)
  );
  CREATE TRIGGER telemetry_node_removed AFTER DELETE ON nodes BEGIN
    DELETE FROM telemetry WHERE node_id = OLD.node_id;
    DELETE FROM telemetry_batches WHERE node_id = OLD.node_id;
  END;
  `,
  // 13: the dashboard (issue 21, src/control-plane/ui/). Admin tokens (`control-plane admin-token
  // create`; only the SHA-256 of each is stored) and the browser sessions they are exchanged for
  // (only the SHA-256 of the cookie value; each with its CSRF token; ending with its token). Policy
  // revision history: every revision a project's policy takes, kept by triggers on policies so no
  // writer of that table has to remember it. Per-rule hits: each node's last heartbeat report.
  `
  CREATE TABLE admin_tokens (
    id TEXT PRIMARY KEY,                    -- first 12 hex digits of hash, shown and used to revoke
    hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
  );
  CREATE TABLE admin_sessions (
    hash TEXT PRIMARY KEY,                  -- sha256 hex of the cookie value
    token_id TEXT NOT NULL REFERENCES admin_tokens(id),
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX admin_sessions_token ON admin_sessions(token_id);
  CREATE TABLE policy_revisions (
    project_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    rules TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, revision)
  );
  INSERT INTO policy_revisions SELECT project_id, revision, fingerprint, rules, updated_at FROM policies;
  CREATE TRIGGER policies_history_insert AFTER INSERT ON policies BEGIN
    INSERT OR REPLACE INTO policy_revisions VALUES (NEW.project_id, NEW.revision, NEW.fingerprint, NEW.rules, NEW.updated_at);
  END;
  CREATE TRIGGER policies_history_update AFTER UPDATE ON policies BEGIN
    INSERT OR REPLACE INTO policy_revisions VALUES (NEW.project_id, NEW.revision, NEW.fingerprint, NEW.rules, NEW.updated_at);
  END;
  CREATE TABLE policy_hits (
    node_id TEXT PRIMARY KEY,
    revision_id TEXT,
    fingerprint TEXT,                       -- of the compiled rules the node enforces
    hits TEXT NOT NULL,                     -- JSON [[packets, bytes], ...] by compiled-rule index
    reported_at INTEGER NOT NULL
  );
  CREATE TRIGGER policy_hits_node_removed AFTER DELETE ON nodes BEGIN
    DELETE FROM policy_hits WHERE node_id = OLD.node_id;
  END;
  `,
  // 14: relay sessions in the database (relay-assigner.ts, issue 20): every replica on one
  // database sees the sessions another assigned, and assignment (in the transaction that appends
  // the events announcing a session) is serialized by the writer lock. One session per pair
  // (peer_a < peer_b) and per port of a bridge, as constraints. relay_pairs: what agents reported
  // of a pair's direct path (direct = 1 with both ends' endpoint/NAT type then, 0 failing).
  `
  CREATE TABLE relay_sessions (
    session_id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    peer_a TEXT NOT NULL,                   -- the lower node ID of the pair
    peer_b TEXT NOT NULL,
    bridge_id TEXT NOT NULL,
    relay_port INTEGER NOT NULL,
    relay_endpoint TEXT NOT NULL,
    binding_key BLOB NOT NULL,              -- sealed (secrets.ts, purpose relay-binding-key:<session_id>)
    expires_at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    UNIQUE (peer_a, peer_b),
    UNIQUE (bridge_id, relay_port)
  );
  CREATE INDEX relay_sessions_b ON relay_sessions(peer_b);
  CREATE TABLE relay_pairs (
    node_lo TEXT NOT NULL,
    node_hi TEXT NOT NULL,
    direct INTEGER NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (node_lo, node_hi)
  );
  `,
  // 15: registration at scale (issue 20). membership_appends: a registration's node, logged under
  // the membership generation it made (prev_gen -> gen), so a process whose cached visibility model
  // is at prev_gen (another replica) appends the node instead of re-reading the whole project; a
  // chain that does not link (any other membership change logs nothing) means a full re-read.
  // Pruned after 10 minutes. mesh_alloc.dense_below: every mesh address from the range's first up
  // to it is taken, so allocation probes from there instead of scanning every node; a node's
  // address freed below it (removal, or a change of mesh_ip_num) lowers it, and a node inserted
  // at it raises it, by trigger. Logging an append sets the project's generation (by trigger:
  // one statement per registration, each a round trip on PostgreSQL).
  // nodes_public_key_any: the key-in-use check also covers nodes outside the partial UNIQUE index.
  // events_plain / events_peers_of: a stream-less heartbeat's "reconcile?" check probes for events
  // about no peer, and for those about the peers a node sees, instead of paging through the log.
  `
  CREATE TABLE membership_appends (
    project_id TEXT NOT NULL,
    row INTEGER NOT NULL,                   -- nodes.row of the registered node
    gen INTEGER NOT NULL,
    prev_gen INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    mesh_ip_num INTEGER NOT NULL,
    labels TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, row)
  );
  CREATE TABLE mesh_alloc (id INTEGER PRIMARY KEY CHECK (id = 1), dense_below INTEGER NOT NULL);
  INSERT INTO mesh_alloc (id, dense_below) VALUES (1, 0);
  CREATE TRIGGER mesh_alloc_freed AFTER DELETE ON nodes BEGIN
    UPDATE mesh_alloc SET dense_below = OLD.mesh_ip_num WHERE OLD.mesh_ip_num < dense_below;
  END;
  CREATE TRIGGER mesh_alloc_moved AFTER UPDATE OF mesh_ip_num ON nodes BEGIN
    UPDATE mesh_alloc SET dense_below = OLD.mesh_ip_num WHERE OLD.mesh_ip_num < dense_below;
  END;
  CREATE TRIGGER mesh_alloc_taken AFTER INSERT ON nodes BEGIN
    UPDATE mesh_alloc SET dense_below = NEW.mesh_ip_num + 1 WHERE dense_below = NEW.mesh_ip_num;
  END;
  CREATE TRIGGER membership_appended AFTER INSERT ON membership_appends BEGIN
    UPDATE projects SET membership_gen = NEW.gen WHERE id = NEW.project_id;
  END;
  CREATE INDEX nodes_public_key_any ON nodes(public_key);
  CREATE INDEX events_plain ON events(project_id, seq) WHERE peers_of IS NULL;
  CREATE INDEX events_peers_of ON events(peers_of, seq) WHERE peers_of IS NOT NULL;
  `,
];
