-- Revoking and rotating credentials (issue 22, item 7), and their audit trail.
--
-- Tokens kept one per row (staff, owners, committees, share links) get an id to name them by
-- (their digest is the secret's fingerprint and is never shown) and `revoked_at`; a rotation
-- revokes the row and inserts its successor. Secrets kept one per object (a gate's device
-- secret, a supervisor's token, a booking's token) get a `…_revoked_at`; a rotation replaces
-- the digest in place and clears it. Lookups ignore revoked credentials.

alter table staff_tokens
    add column id uuid not null default gen_random_uuid(),
    add column revoked_at timestamptz,
    add constraint staff_tokens_id_key unique (id);
alter table owner_tokens
    add column id uuid not null default gen_random_uuid(),
    add column revoked_at timestamptz,
    add constraint owner_tokens_id_key unique (id);
alter table committee_tokens
    add column id uuid not null default gen_random_uuid(),
    add column revoked_at timestamptz,
    add constraint committee_tokens_id_key unique (id);
alter table disclosure_links
    add column id uuid not null default gen_random_uuid(),
    add column label text not null default '',
    add column revoked_at timestamptz,
    add constraint disclosure_links_id_key unique (id);
alter table gates add column secret_revoked_at timestamptz;
alter table supervisors add column token_revoked_at timestamptz;
alter table bookings add column token_revoked_at timestamptz;

-- Every replica forgets its cached credentials when one is revoked or rotated, by the API or
-- by hand in SQL (the channel and function of migration 0013). Gate contexts: the trigger of
-- 0013 again, with the new column. Staff tokens: migration 0017's trigger already fires on
-- any update. Owner, committee, supervisor, share-link and booking tokens are not cached
-- today (every request reads Postgres, so a revocation is seen by the next one); they notify
-- all the same, so that a cache added later cannot miss a revocation. Revocations are rare:
-- the cost is one refill of each cache per revocation.
drop trigger gates_context_updated on gates;
create trigger gates_context_updated
    after update of id, tenant_id, lot_id, direction, secret_sha256, secret_revoked_at, vendor,
        device_serial, fail_mode, device_url, device_username, device_password
    on gates for each statement execute function notify_gate_contexts();
create trigger owner_tokens_changed
    after update or delete or truncate
    on owner_tokens for each statement execute function notify_gate_contexts();
create trigger committee_tokens_changed
    after update or delete or truncate
    on committee_tokens for each statement execute function notify_gate_contexts();
create trigger disclosure_links_changed
    after update or delete or truncate
    on disclosure_links for each statement execute function notify_gate_contexts();
create trigger supervisors_token_changed
    after update of token_sha256, token_revoked_at or delete or truncate
    on supervisors for each statement execute function notify_gate_contexts();
create trigger bookings_token_changed
    after update of token_sha256, token_revoked_at
    on bookings for each statement execute function notify_gate_contexts();

-- Who issued, revoked or rotated which credential, and when. Never updated or deleted.
create table credential_audit (
    id             bigserial primary key,
    -- The firm the credential belongs to; null for supervisors (the platform's own).
    tenant_id      uuid references tenants (id),
    kind           text not null check (kind in (
        'staff', 'owner', 'committee', 'disclosure_link', 'device', 'supervisor', 'booking')),
    credential_id  uuid not null,
    action         text not null check (action in ('issued', 'revoked', 'rotated')),
    -- A rotated token kept one per row: the row that replaced it.
    replaced_by    uuid,
    actor_kind     text not null check (actor_kind in ('operator', 'staff', 'visitor')),
    -- The staff token's id for staff; null for the operator and a booking's holder.
    actor_id       uuid,
    at             timestamptz not null default now(),
    check ((actor_kind = 'staff') = (actor_id is not null))
);
create index credential_audit_tenant on credential_audit (tenant_id, id);
create trigger credential_audit_append_only before update or delete on credential_audit
    for each row execute function refuse_change();
