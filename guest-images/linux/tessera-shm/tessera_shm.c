// SPDX-License-Identifier: GPL-2.0
/*
 * Tessera shared regions for Linux user space.
 *
 * Binds the guest DTB's "tessera,shm" nodes (docs/guest-abi.md) and gives
 * each region a character device /dev/tessera/<name>:
 *   mmap   the region, Normal write-back cacheable (as the other peers map
 *          it); offset 0 is the hypervisor's header page, always read-only;
 *          the data (from tessera,data-offset) is writable only when the
 *          node says tessera,writable.
 *   read   4 bytes: the number of doorbells received since the module
 *          loaded; blocks until it differs from what this open file last
 *          read (O_NONBLOCK: -EAGAIN). poll: POLLIN when it differs.
 *   ioctl  TSHM_IOC_RING rings the other peers (TESSERA_DOORBELL hypercall).
 *   write  any non-empty write rings once too (handy from a shell).
 * sysfs (/sys/class/misc/tshm-<name>/): name, size, writable, index,
 * peer_index, data_offset, doorbells, generation.
 *
 * Why not uio_pdrv_genirq: Debian's arm64 kernels do not build it, and UIO
 * maps memory non-cached (Device memory on arm64), where libc's memcpy
 * faults and everything is slow.
 */
#include <linux/arm-smccc.h>
#include <linux/fs.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/platform_device.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>

#define TESSERA_DOORBELL 0xC6000001UL
/* 0xE5: a type no other driver's ioctls use, so no tty ioctl rings. */
#define TSHM_IOC_RING _IO(0xE5, 1)
#define TSHM_HEADER_SIZE 0x1000
#define TSHM_GENERATION 0x08

/*
 * For the containment test only: lets user space map read-only regions and
 * the header page writable, so that its writes reach the hypervisor's
 * stage 2 (which must stop or restart the VM) instead of faulting here.
 */
static bool stage2_test;
module_param(stage2_test, bool, 0444);
MODULE_PARM_DESC(stage2_test, "map read-only pages writable (fault-containment tests)");

struct tshm {
	struct miscdevice misc;
	char devname[64];
	char nodename[64];
	const char *name;
	phys_addr_t base;
	resource_size_t size;
	u32 index, peer_index, data_offset;
	bool writable;
	int irq;
	atomic_t doorbells;
	wait_queue_head_t wait;
	void *header; /* cacheable kernel mapping of the header page */
};

struct tshm_file {
	struct tshm *shm;
	u32 seen;
};

static struct tshm *to_tshm(struct device *dev)
{
	return container_of((struct miscdevice *)dev_get_drvdata(dev),
			    struct tshm, misc);
}

static irqreturn_t tshm_irq(int irq, void *data)
{
	struct tshm *shm = data;

	atomic_inc(&shm->doorbells);
	wake_up_interruptible(&shm->wait);
	return IRQ_HANDLED;
}

static int tshm_open(struct inode *inode, struct file *file)
{
	struct tshm *shm = container_of(file->private_data, struct tshm, misc);
	struct tshm_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	f->shm = shm;
	f->seen = atomic_read(&shm->doorbells);
	file->private_data = f;
	return 0;
}

static int tshm_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

static ssize_t tshm_read(struct file *file, char __user *buf, size_t len,
			 loff_t *ppos)
{
	struct tshm_file *f = file->private_data;
	struct tshm *shm = f->shm;
	u32 now;

	if (len != sizeof(u32))
		return -EINVAL;
	if (shm->irq < 0)
		return -EIO; /* no doorbell: a read would never return */
	for (;;) {
		now = atomic_read(&shm->doorbells);
		if (now != f->seen)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(shm->wait,
				atomic_read(&shm->doorbells) != f->seen))
			return -ERESTARTSYS;
	}
	if (copy_to_user(buf, &now, sizeof(now)))
		return -EFAULT;
	f->seen = now;
	return sizeof(now);
}

static __poll_t tshm_poll(struct file *file, poll_table *wait)
{
	struct tshm_file *f = file->private_data;
	struct tshm *shm = f->shm;

	if (shm->irq < 0)
		return EPOLLERR;
	poll_wait(file, &shm->wait, wait);
	return atomic_read(&shm->doorbells) != f->seen ? EPOLLIN | EPOLLRDNORM : 0;
}

static long tshm_ring(struct tshm *shm)
{
	struct arm_smccc_res res;

	arm_smccc_1_1_invoke(TESSERA_DOORBELL, shm->index, &res);
	if (res.a0 != 0)
		return -EIO;
	return 0;
}

static ssize_t tshm_write(struct file *file, const char __user *buf,
			  size_t len, loff_t *ppos)
{
	struct tshm_file *f = file->private_data;
	long err;

	if (len == 0)
		return 0;
	err = tshm_ring(f->shm);
	return err ? err : len;
}

static long tshm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct tshm_file *f = file->private_data;

	if (cmd != TSHM_IOC_RING)
		return -ENOTTY;
	return tshm_ring(f->shm);
}

static int tshm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct tshm_file *f = file->private_data;
	struct tshm *shm = f->shm;
	unsigned long len = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;

	if (off >= shm->size || len > shm->size - off)
		return -EINVAL;
	/* The header page is the hypervisor's; the data, the board file's. */
	if ((!shm->writable || off < shm->data_offset) && !stage2_test) {
		if (vma->vm_flags & VM_WRITE)
			return -EPERM;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
		vm_flags_clear(vma, VM_MAYWRITE);
#else
		vma->vm_flags &= ~VM_MAYWRITE;
#endif
	}
	/*
	 * vm_page_prot as mmap made it: Normal write-back cacheable, the
	 * attributes every peer (and the hypervisor) uses for the region.
	 */
	return remap_pfn_range(vma, vma->vm_start,
			       (shm->base + off) >> PAGE_SHIFT, len,
			       vma->vm_page_prot);
}

static const struct file_operations tshm_fops = {
	.owner = THIS_MODULE,
	.open = tshm_open,
	.release = tshm_release,
	.read = tshm_read,
	.write = tshm_write,
	.poll = tshm_poll,
	.unlocked_ioctl = tshm_ioctl,
	.mmap = tshm_mmap,
	.llseek = noop_llseek,
};

/* A read-only sysfs attribute: printf format and the value, from shm. */
#define TSHM_ATTR(attr, fmt, value)                                        \
	static ssize_t attr##_show(struct device *dev,                     \
				   struct device_attribute *a, char *buf)  \
	{                                                                  \
		struct tshm *shm = to_tshm(dev);                           \
		return sysfs_emit(buf, fmt "\n", value);                   \
	}                                                                  \
	static DEVICE_ATTR_RO(attr)

TSHM_ATTR(name, "%s", shm->name);
TSHM_ATTR(size, "%llu", (u64)shm->size);
TSHM_ATTR(writable, "%d", shm->writable);
TSHM_ATTR(index, "%u", shm->index);
TSHM_ATTR(peer_index, "%u", shm->peer_index);
TSHM_ATTR(data_offset, "%u", shm->data_offset);
TSHM_ATTR(doorbells, "%u", atomic_read(&shm->doorbells));
/* The hypervisor changes it at any time: read it afresh, once. */
TSHM_ATTR(generation, "%u",
	  READ_ONCE(*(u32 *)(shm->header + TSHM_GENERATION)));

static struct attribute *tshm_attrs[] = {
	&dev_attr_name.attr,	    &dev_attr_size.attr,
	&dev_attr_writable.attr,    &dev_attr_index.attr,
	&dev_attr_peer_index.attr,  &dev_attr_data_offset.attr,
	&dev_attr_doorbells.attr,   &dev_attr_generation.attr,
	NULL,
};
ATTRIBUTE_GROUPS(tshm);

static int tshm_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct device_node *np = dev->of_node;
	struct resource *res;
	struct tshm *shm;
	int err;

	shm = devm_kzalloc(dev, sizeof(*shm), GFP_KERNEL);
	if (!shm)
		return -ENOMEM;
	res = platform_get_resource(pdev, IORESOURCE_MEM, 0);
	if (!res)
		return dev_err_probe(dev, -EINVAL, "no reg\n");
	shm->base = res->start;
	shm->size = resource_size(res);
	if (of_property_read_string(np, "tessera,name", &shm->name) ||
	    of_property_read_u32(np, "tessera,index", &shm->index) ||
	    of_property_read_u32(np, "tessera,peer-index", &shm->peer_index) ||
	    of_property_read_u32(np, "tessera,data-offset", &shm->data_offset))
		return dev_err_probe(dev, -EINVAL,
				     "tessera,name/index/peer-index/data-offset missing\n");
	if (!shm->name[0] || strchr(shm->name, '/') ||
	    strlen(shm->name) > 40)
		return dev_err_probe(dev, -EINVAL, "bad region name '%s'\n",
				     shm->name);
	if (shm->data_offset < TSHM_HEADER_SIZE ||
	    shm->data_offset >= shm->size ||
	    !PAGE_ALIGNED(shm->base) || !PAGE_ALIGNED(shm->size) ||
	    !PAGE_ALIGNED(shm->data_offset))
		return dev_err_probe(dev, -EINVAL,
				     "region %s: bad size or data offset\n",
				     shm->name);
	shm->writable = of_property_read_bool(np, "tessera,writable");
	if (!devm_request_mem_region(dev, shm->base, shm->size, shm->name))
		return dev_err_probe(dev, -EBUSY, "region %s: busy\n",
				     shm->name);
	shm->header = devm_memremap(dev, shm->base, TSHM_HEADER_SIZE,
				    MEMREMAP_WB);
	if (IS_ERR(shm->header))
		return dev_err_probe(dev, PTR_ERR(shm->header),
				     "region %s: header\n", shm->name);
	init_waitqueue_head(&shm->wait);
	atomic_set(&shm->doorbells, 0);
	shm->irq = platform_get_irq_optional(pdev, 0);
	if (shm->irq >= 0) {
		err = devm_request_irq(dev, shm->irq, tshm_irq, 0,
				       dev_name(dev), shm);
		if (err)
			return dev_err_probe(dev, err, "region %s: irq\n",
					     shm->name);
	}
	snprintf(shm->devname, sizeof(shm->devname), "tshm-%s", shm->name);
	snprintf(shm->nodename, sizeof(shm->nodename), "tessera/%s", shm->name);
	shm->misc.minor = MISC_DYNAMIC_MINOR;
	shm->misc.name = shm->devname;
	shm->misc.nodename = shm->nodename;
	shm->misc.fops = &tshm_fops;
	shm->misc.groups = tshm_groups;
	shm->misc.mode = 0600;
	shm->misc.parent = dev;
	err = misc_register(&shm->misc);
	if (err)
		return dev_err_probe(dev, err, "region %s: misc\n", shm->name);
	platform_set_drvdata(pdev, shm);
	dev_info(dev, "region %s: %llu KiB at %pa, %s, doorbell %s\n",
		 shm->name, (u64)shm->size >> 10, &shm->base,
		 shm->writable ? "read-write" : "read-only",
		 shm->irq >= 0 ? "yes" : "none");
	return 0;
}

static int tshm_remove(struct platform_device *pdev)
{
	struct tshm *shm = platform_get_drvdata(pdev);

	misc_deregister(&shm->misc);
	return 0;
}

static const struct of_device_id tshm_of_match[] = {
	{ .compatible = "tessera,shm" },
	{}
};
MODULE_DEVICE_TABLE(of, tshm_of_match);

static struct platform_driver tshm_driver = {
	.probe = tshm_probe,
	.remove = tshm_remove,
	.driver = {
		.name = "tessera-shm",
		.of_match_table = tshm_of_match,
	},
};
module_platform_driver(tshm_driver);

MODULE_DESCRIPTION("Tessera shared regions and doorbells for user space");
MODULE_LICENSE("GPL");
