-- Disclosure (公示, issue 6): unguessable public share links, the owners' committee's
-- read-only credentials, and supervisors (street offices) over the compounds of their area.

create table disclosure_links (
    token_sha256  bytea primary key,
    tenant_id     uuid not null,
    compound_id   uuid not null references compounds (id),
    created_at    timestamptz not null default now()
);

create table committee_tokens (
    token_sha256  bytea primary key,
    tenant_id     uuid not null,
    compound_id   uuid not null references compounds (id),
    label         text not null,
    created_at    timestamptz not null default now()
);

create table supervisors (
    id            uuid primary key,
    name          text not null check (length(name) between 1 and 200),
    area          text not null check (length(area) between 1 and 200),
    token_sha256  bytea not null unique,
    created_at    timestamptz not null default now()
);

-- Compounds by area; a compound belongs to at most one supervisor.
alter table compounds add column supervisor_id uuid references supervisors (id);
