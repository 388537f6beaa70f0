-- An owner's consent to let their own space by the month through the property office
-- (issue 26): given and withdrawn by the owner with their owner token. Until it is given, staff
-- cannot let the space; withdrawn, running terms stand (the letting agreement covers them) but
-- no term is entered or renewed.
alter table spaces add column letting_consented_at timestamptz;

create table letting_consents (
    id          bigint generated always as identity primary key,
    space_id    uuid not null references spaces (id),
    owner_id    uuid not null references owners (id),
    consented   boolean not null,
    at          timestamptz not null
);
create index letting_consents_space on letting_consents (space_id, id);
