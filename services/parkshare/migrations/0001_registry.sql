-- The registry: property firms (tenants) → compounds → lots → gates and spaces; owners,
-- vehicles, permits, exempt vehicles and the blocklist. Every row carries its tenant_id so that
-- every staff query can be scoped by it.

create table tenants (
    id          uuid primary key,
    name        text not null check (length(name) between 1 and 200),
    created_at  timestamptz not null default now()
);

create table staff_tokens (
    token_sha256 bytea primary key,
    tenant_id    uuid not null references tenants (id),
    label        text not null,
    created_at   timestamptz not null default now()
);

create table compounds (
    id          uuid primary key,
    tenant_id   uuid not null references tenants (id),
    name        text not null check (length(name) between 1 and 200),
    time_zone   text not null,
    -- parkshare_domain::policy::GatePolicy as JSON.
    policy      jsonb not null,
    created_at  timestamptz not null default now(),
    unique (tenant_id, name),
    unique (tenant_id, id)
);

create table lots (
    id                uuid primary key,
    tenant_id         uuid not null references tenants (id),
    compound_id       uuid not null,
    name              text not null check (length(name) between 1 and 200),
    visitor_capacity  integer not null check (visitor_capacity >= 0),
    -- parkshare_domain::tariff::Tariff as JSON.
    tariff            jsonb not null,
    created_at        timestamptz not null default now(),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    unique (compound_id, name),
    unique (tenant_id, id)
);

create table gates (
    id             uuid primary key,
    tenant_id      uuid not null,
    lot_id         uuid not null,
    name           text not null check (length(name) between 1 and 200),
    direction      text not null check (direction in ('entry', 'exit')),
    secret_sha256  bytea not null unique,
    created_at     timestamptz not null default now(),
    foreign key (tenant_id, lot_id) references lots (tenant_id, id),
    unique (lot_id, name)
);

create table owners (
    id             uuid primary key,
    tenant_id      uuid not null,
    compound_id    uuid not null,
    -- The property firm's own key for the owner, usually the unit (e.g. "3-1-502").
    unit           text not null check (length(unit) between 1 and 100),
    name           text not null check (length(name) between 1 and 200),
    -- Exclusive floor area (专有部分面积), the key for splitting common revenue.
    floor_area_m2  numeric(12, 2) not null check (floor_area_m2 > 0),
    phone          text,
    created_at     timestamptz not null default now(),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    unique (compound_id, unit),
    unique (tenant_id, id)
);

create table spaces (
    id          uuid primary key,
    tenant_id   uuid not null,
    lot_id      uuid not null,
    code        text not null check (length(code) between 1 and 50),
    kind        text not null check (kind in ('owned', 'common', 'developer_unsold')),
    owner_id    uuid,
    created_at  timestamptz not null default now(),
    foreign key (tenant_id, lot_id) references lots (tenant_id, id),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id),
    constraint spaces_owner_iff_owned check ((kind = 'owned') = (owner_id is not null)),
    constraint spaces_lot_code_key unique (lot_id, code),
    unique (tenant_id, id)
);

create table vehicles (
    id           uuid primary key,
    tenant_id    uuid not null,
    compound_id  uuid not null,
    plate        text not null,
    class        text not null check (class in ('small', 'large', 'new_energy')),
    owner_id     uuid not null,
    created_at   timestamptz not null default now(),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id),
    constraint vehicles_compound_plate_key unique (compound_id, plate),
    unique (tenant_id, id)
);

create table permits (
    id           uuid primary key,
    tenant_id    uuid not null,
    compound_id  uuid not null,
    vehicle_id   uuid not null,
    kind         text not null check (kind in ('monthly', 'owned_space')),
    -- Monthly passes may be limited to one lot; owned-space rights are for the space's lot.
    lot_id       uuid,
    space_id     uuid,
    valid_from   date not null,
    valid_to     date,
    created_at   timestamptz not null default now(),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    foreign key (tenant_id, vehicle_id) references vehicles (tenant_id, id),
    foreign key (tenant_id, lot_id) references lots (tenant_id, id),
    foreign key (tenant_id, space_id) references spaces (tenant_id, id),
    check (valid_to is null or valid_to >= valid_from),
    check (kind <> 'monthly' or valid_to is not null),
    check (kind <> 'owned_space' or (space_id is not null and lot_id is not null))
);
create index permits_vehicle on permits (vehicle_id);

create table exempt_vehicles (
    compound_id  uuid not null references compounds (id),
    tenant_id    uuid not null,
    plate        text not null,
    class        text not null check (class in ('fire', 'ambulance', 'police', 'official_duty')),
    note         text not null default '',
    created_at   timestamptz not null default now(),
    primary key (compound_id, plate)
);

create table blocklist (
    compound_id  uuid not null references compounds (id),
    tenant_id    uuid not null,
    plate        text not null,
    reason       text not null,
    created_at   timestamptz not null default now(),
    primary key (compound_id, plate)
);
