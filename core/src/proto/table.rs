//! The wire tables: each enum with a wire byte is written once, as a table, and these macros
//! generate everything that used to repeat it (the enum, its number and name conversions, and
//! for messages the tag, name, encoder, decoder and encoded length).
//!
//! - [`wire_enum!`] takes `Variant = number => "name"` rows and generates a fieldless
//!   `#[repr]` enum with `ALL`, `to_wire`, `from_wire`, `name`, `from_name`, `From<Enum>` for the
//!   number and `TryFrom<number>` (unknown numbers are [`ProtoError::BadValue`](super::ProtoError)).
//! - [`messages!`] takes `Variant = tag "name" { field: Type, … }` rows and generates the message
//!   enum, a fieldless tag enum (through `wire_enum!`) and `kind`, `tag`, `name`, `encoded_len`,
//!   `encode` and `decode`. Fields are encoded in the order written, each through its
//!   [`Field`](super::codec::Field) implementation, so the three stay in step by construction.

/// A fieldless wire enum from one table of `Variant = number => "name"` rows.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ident {
            $( $(#[$vmeta:meta])* $var:ident = $val:literal => $vname:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        #[non_exhaustive]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vmeta])* $var = $val, )*
        }

        impl $name {
            /// Every value, in table order.
            pub const ALL: &'static [Self] = &[$(Self::$var),*];

            /// The number on the wire.
            #[must_use]
            pub const fn to_wire(self) -> $repr {
                self as $repr
            }

            /// The value for a wire number; `None` for a number this version does not know.
            #[must_use]
            pub const fn from_wire(v: $repr) -> Option<Self> {
                match v {
                    $( $val => Some(Self::$var), )*
                    _ => None,
                }
            }

            /// A stable lower-case name, for logs and scripts.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$var => $vname, )*
                }
            }

            /// The value with that [`name`](Self::name).
            #[must_use]
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                v.to_wire()
            }
        }

        impl TryFrom<$repr> for $name {
            type Error = $crate::proto::ProtoError;
            fn try_from(v: $repr) -> Result<Self, $crate::proto::ProtoError> {
                Self::from_wire(v).ok_or($crate::proto::ProtoError::BadValue)
            }
        }
    };
}

/// A `u8` wire enum is also a message field: one byte, unknown values refused.
macro_rules! enum_field {
    ($($name:ident),*) => {$(
        /// One byte; an unknown value is [`ProtoError::BadValue`](crate::proto::ProtoError).
        impl $crate::proto::codec::Field<'_> for $name {
            fn encoded_len(&self) -> usize {
                1
            }
            fn encode_field(
                &self,
                w: &mut $crate::proto::codec::Writer<'_>,
            ) -> Result<(), $crate::proto::ProtoError> {
                w.u8(self.to_wire())
            }
            fn decode_field(
                r: &mut $crate::proto::codec::Reader<'_>,
            ) -> Result<Self, $crate::proto::ProtoError> {
                Self::try_from(r.u8()?)
            }
        }
    )*};
}

/// A message enum from one table of `Variant = tag "name" { field: Type, … }` rows (or
/// `Variant = tag "name" (binding: Type)` for a one-field tuple variant, or no fields at all).
macro_rules! messages {
    (
        $(#[$meta:meta])*
        pub enum $name:ident<$lt:lifetime> : $tags:ident {
            $(
                $(#[$vmeta:meta])*
                $var:ident = $tag:literal $vname:literal
                    $( { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? } )?
                    $( ( $tfield:ident : $tty:ty ) )?
                ,
            )*
        }
    ) => {
        $(#[$meta])*
        pub enum $name<$lt> {
            $(
                $(#[$vmeta])*
                $var $( { $( $(#[$fmeta])* $field: $fty ),* } )? $( ( $tty ) )?,
            )*
        }

        wire_enum! {
            #[doc = concat!("The tag bytes of [`", stringify!($name), "`], with their names.")]
            pub enum $tags: u8 {
                $(
                    #[doc = concat!("`", stringify!($tag), "`: [`", stringify!($name), "::",
                        stringify!($var), "`].")]
                    $var = $tag => $vname,
                )*
            }
        }

        impl<$lt> $name<$lt> {
            /// Which message this is.
            #[must_use]
            pub const fn kind(&self) -> $tags {
                match self {
                    $( Self::$var { .. } => $tags::$var, )*
                }
            }

            /// The tag byte.
            #[must_use]
            pub const fn tag(&self) -> u8 {
                self.kind().to_wire()
            }

            /// A stable name of the message kind, for logs (never the fields: they may be
            /// secret).
            #[must_use]
            pub const fn name(&self) -> &'static str {
                self.kind().name()
            }

            /// Bytes [`encode`](Self::encode) writes: the tag and every field.
            #[must_use]
            pub fn encoded_len(&self) -> usize {
                use $crate::proto::codec::Field as _;
                1 + match self {
                    $(
                        Self::$var $( { $( $field ),* } )? $( ( $tfield ) )? => {
                            0 $( $( + $field.encoded_len() )* )? $( + $tfield.encoded_len() )?
                        }
                    )*
                }
            }

            /// Encodes into `out`; returns the length.
            pub fn encode(&self, out: &mut [u8]) -> Result<usize, $crate::proto::ProtoError> {
                use $crate::proto::codec::Field as _;
                let mut w = $crate::proto::codec::Writer::new(out);
                w.u8(self.tag())?;
                match self {
                    $(
                        Self::$var $( { $( $field ),* } )? $( ( $tfield ) )? => {
                            $( $( $field.encode_field(&mut w)?; )* )?
                            $( $tfield.encode_field(&mut w)?; )?
                        }
                    )*
                }
                Ok(w.len())
            }

            /// Decodes one whole message; an unknown tag and trailing bytes are errors.
            pub fn decode(bytes: &$lt [u8]) -> Result<Self, $crate::proto::ProtoError> {
                use $crate::proto::codec::Field;
                let mut r = $crate::proto::codec::Reader::new(bytes);
                let tag = r.u8()?;
                let msg = match $tags::from_wire(tag) {
                    $(
                        Some($tags::$var) => Self::$var
                            $( { $( $field: <$fty as Field<$lt>>::decode_field(&mut r)? ),* } )?
                            $( ( <$tty as Field<$lt>>::decode_field(&mut r)? ) )?,
                    )*
                    None => return Err($crate::proto::ProtoError::UnknownTag(tag)),
                };
                r.finish()?;
                Ok(msg)
            }
        }
    };
}

/// A struct of fields from one table, encoded in the order written (the items of lists and
/// the body of `ServerMsg::Message`): the struct, its [`Field`](super::codec::Field)
/// implementation and an inherent `encoded_len`.
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident<$lt:lifetime> {
            $( $(#[$fmeta:meta])* pub $field:ident : $fty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name<$lt> {
            $( $(#[$fmeta])* pub $field: $fty, )*
        }

        impl<$lt> $name<$lt> {
            /// Bytes this takes inside a list or a message.
            #[must_use]
            pub fn encoded_len(&self) -> usize {
                use $crate::proto::codec::Field as _;
                0 $( + self.$field.encoded_len() )*
            }
        }

        impl<$lt> $crate::proto::codec::Field<$lt> for $name<$lt> {
            fn encoded_len(&self) -> usize {
                $name::encoded_len(self)
            }
            fn encode_field(
                &self,
                w: &mut $crate::proto::codec::Writer<'_>,
            ) -> Result<(), $crate::proto::ProtoError> {
                $( self.$field.encode_field(w)?; )*
                Ok(())
            }
            fn decode_field(
                r: &mut $crate::proto::codec::Reader<$lt>,
            ) -> Result<Self, $crate::proto::ProtoError> {
                use $crate::proto::codec::Field;
                Ok(Self { $( $field: <$fty as Field<$lt>>::decode_field(r)?, )* })
            }
        }
    };
}
