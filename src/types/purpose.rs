//! Why the granulator calls a model (`bitware_kit::ai::Purpose`); attempts
//! are recorded under these names.

use bitware_kit::ai::Purpose;

pub const GRANULATE: Purpose = Purpose::named("granulate");
pub const REPAIR: Purpose = Purpose::named("repair");
pub const VALIDATE: Purpose = Purpose::named("validate");
