-- The lottery (摇号) for new or released spaces (issue 26; parkshare_allocation::lottery and
-- docs/lottery.md). A lottery, its applications and its draw are written once and never
-- changed: the commitment published before the window opens must stay the one the draw is
-- checked against.

create table lotteries (
    id                     uuid primary key,
    tenant_id              uuid not null,
    compound_id            uuid not null,
    title                  text not null check (length(title) between 1 and 200),
    -- The spaces allotted: common-area or developer-unsold spaces of the compound.
    space_ids              uuid[] not null check (cardinality(space_ids) between 1 and 1000),
    applications_open_at   timestamptz not null,
    applications_close_at  timestamptz not null,
    -- How long a winner has to accept an offer before it passes to the next applicant.
    offer_minutes          integer not null check (offer_minutes between 1 and 43200),
    algorithm              text not null,
    commitment             text not null check (commitment ~ '^[0-9a-f]{64}$'),
    -- Secret until the draw: no route shows it before `lottery_draws` holds a row.
    seed                   text not null check (seed ~ '^[0-9a-f]{64}$'),
    created_by             text not null,
    created_at             timestamptz not null default now(),
    check (applications_close_at > applications_open_at),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    unique (tenant_id, id)
);
create index lotteries_compound on lotteries (compound_id, created_at);
create trigger lotteries_immutable before update or delete on lotteries
    for each row execute function refuse_change();

create function lottery_window_open() returns trigger language plpgsql as $$
declare
    window_open boolean;
begin
    select clock_timestamp() >= applications_open_at and clock_timestamp() < applications_close_at
      into window_open from lotteries where id = new.lottery_id;
    if not coalesce(window_open, false) then
        raise exception 'the lottery % takes no applications now', new.lottery_id
            using errcode = 'P0002';
    end if;
    return new;
end
$$;

create table lottery_applications (
    lottery_id  uuid not null references lotteries (id),
    tenant_id   uuid not null,
    owner_id    uuid not null,
    -- The owner's unit: the public key the draw sorts by (never the owner's name).
    unit        text not null,
    -- 0: the household had no space in the compound when it applied; 1: it had one.
    tier        smallint not null check (tier in (0, 1)),
    applied_at  timestamptz not null default clock_timestamp(),
    primary key (lottery_id, owner_id),
    unique (lottery_id, unit),
    foreign key (tenant_id, owner_id) references owners (tenant_id, id)
);
create trigger lottery_applications_in_window before insert on lottery_applications
    for each row execute function lottery_window_open();
create trigger lottery_applications_immutable before update or delete on lottery_applications
    for each row execute function refuse_change();

create table lottery_draws (
    lottery_id        uuid primary key references lotteries (id),
    -- The applicants' units, winners first, as parkshare_allocation::lottery::draw ordered them.
    draw_order        text[] not null,
    applicants_digest text not null,
    drawn_by          text not null,
    drawn_at          timestamptz not null default clock_timestamp()
);
create trigger lottery_draws_immutable before update or delete on lottery_draws
    for each row execute function refuse_change();

-- An offer to the applicant at `position` of the draw. An offer declined or lapsed passes to
-- the next applicant without one.
create table lottery_offers (
    lottery_id   uuid not null references lottery_draws (lottery_id),
    position     integer not null check (position >= 0),
    owner_id     uuid not null,
    offered_at   timestamptz not null,
    expires_at   timestamptz not null,
    answer       text check (answer in ('accepted', 'declined')),
    answered_at  timestamptz,
    check ((answer is null) = (answered_at is null)),
    primary key (lottery_id, position),
    unique (lottery_id, owner_id)
);

create trigger lotteries_no_truncate before truncate on lotteries
    for each statement execute function refuse_change();
create trigger lottery_applications_no_truncate before truncate on lottery_applications
    for each statement execute function refuse_change();
create trigger lottery_draws_no_truncate before truncate on lottery_draws
    for each statement execute function refuse_change();
