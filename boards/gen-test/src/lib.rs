//! The generated tables of the checked-in board files, compiled as the
//! hypervisor compiles them: `no_std`, through `include!`.
#![no_std]

pub mod qemu_virt {
    include!(concat!(env!("OUT_DIR"), "/qemu_virt.rs"));
}

pub mod test_partition {
    include!(concat!(env!("OUT_DIR"), "/test_partition.rs"));
}
