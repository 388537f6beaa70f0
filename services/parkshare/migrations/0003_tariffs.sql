-- Regulated prices and filed tariffs. A price standard is the authority's figures for one
-- kind of space; a tariff version is filed against one and is immutable once filed (a change
-- is a new version). Sessions remember the version in force at their entry.

create table price_standards (
    id          uuid primary key,
    tenant_id   uuid not null,
    compound_id uuid not null,
    -- What it covers, e.g. "主城区住宅小区 地面公共车位".
    name        text not null check (length(name) between 1 and 200),
    -- The authority's document, e.g. "昆发改价格〔2021〕12号".
    document    text not null check (length(document) between 1 and 200),
    space_kind  text not null check (space_kind in ('owned', 'common', 'developer_unsold')),
    -- parkshare_tariff::regulated::Standard as JSON.
    standard    jsonb not null,
    created_at  timestamptz not null default now(),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    unique (tenant_id, id)
);

create table tariff_versions (
    id               uuid primary key,
    tenant_id        uuid not null,
    lot_id           uuid not null,
    version          integer not null check (version > 0),
    -- parkshare_tariff::Tariff as JSON.
    tariff           jsonb not null,
    standard_id      uuid not null,
    -- Who set the price: the authority's standard itself (until an owners' assembly decides),
    -- an owners' assembly resolution, or an agreement of owners and property firm.
    basis            text not null check (basis in ('authority_standard', 'assembly_resolution', 'owners_agreement')),
    resolution_no    text,
    resolution_date  date,
    filing_no        text not null unique,
    effective_from   timestamptz not null,
    filed_at         timestamptz not null default now(),
    foreign key (tenant_id, lot_id) references lots (tenant_id, id),
    foreign key (tenant_id, standard_id) references price_standards (tenant_id, id),
    constraint tariff_versions_lot_version_key unique (lot_id, version),
    check (basis <> 'assembly_resolution' or (resolution_no is not null and resolution_date is not null))
);
create index tariff_versions_in_force on tariff_versions (lot_id, effective_from desc, version desc);

create function refuse_change() returns trigger language plpgsql as $$
begin
    raise exception '% rows are immutable once written', tg_table_name using errcode = 'P0001';
end
$$;
create trigger tariff_versions_immutable before update or delete on tariff_versions
    for each row execute function refuse_change();
create trigger price_standards_immutable before update or delete on price_standards
    for each row execute function refuse_change();

alter table sessions add column tariff_version_id uuid references tariff_versions (id);

alter table anomalies drop constraint anomalies_kind_check;
alter table anomalies add constraint anomalies_kind_check check (kind in (
    'plate_corrected', 'no_entry_record', 'missed_exit', 'already_inside', 'exit_before_entry', 'tariff_clamped'));
